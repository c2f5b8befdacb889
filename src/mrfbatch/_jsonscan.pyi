"""Types of the C extension mrfbatch._jsonscan (src/mrfbatch/_jsonscan.c)."""

KEY_ESCAPED: int
LONE_SURROGATE: int
MAX_DEPTH: int

class ScanError(ValueError):
    """Bytes that are not JSON: `args` is (offset in buf, reason)."""

class Partial:
    """Where scan_value stopped for want of data: pass it back with more."""

    resume_at: int  # offset from the value's start where the scan goes on
    flags: int  # the flags found so far
    spans: tuple[tuple[int, int], ...]  # of `key`'s values found so far, from the value's start

    droppable: int  # how many bytes from the value's start forget() may drop

    def forget(self, n: int, /) -> Partial:
        """The same scan, as if the value started n bytes later (n <= droppable)."""

def scan_value(
    buf: bytes | bytearray,
    pos: int,
    eof: bool,
    key: bytes | None,
    partial: Partial | None = None,
    skim: int = 0,
    /,
) -> tuple[int, tuple[tuple[int, int], ...], int] | Partial | None:
    """Validate the JSON value at buf[pos]: (end, spans of `key`'s values, flags); None or a
    Partial when it runs past the end of buf; raises ScanError where it stops being JSON.
    Containers that bring the depth to `skim` (0: none) are only checked structurally
    (src/mrfbatch/_jsonscan_skim.c)."""

UTF8_VALID: int  # utf8_check: every byte is part of a whole, valid character
UTF8_CUT: int  # data[end:] starts a character that may go on in the next piece
UTF8_INVALID: int  # data[end] is where the bytes stop being UTF-8

def utf8_check(data: bytes | bytearray | memoryview, /) -> tuple[int, int]:
    """(status, end): is `data` UTF-8 (RFC 3629, as Python's strict decoder)?"""

def skim_implementations() -> tuple[str, ...]:
    """The names of the skim's implementations this CPU runs, best last."""

def use_skim(name: str, /) -> str:
    """Use the skim implementation `name` (tests); returns the one used before."""

AT_ELEMENT: int  # scan_elements stopped at an element (cut, not JSON, or enough found)
AFTER_ELEMENT: int  # it stopped after an element, before its `,` or `]`
CLOSED: int  # the array's `]` was read

def scan_elements(
    buf: bytes | bytearray,
    pos: int,
    eof: bool,
    key: bytes | None,
    skim: int = 0,
    /,
) -> tuple[int, list[tuple[int, int, int, int, int]], int, Partial | None]:
    """Scan the elements of an array from buf[pos] (after `[` or `,`), each as scan_value does:
    (where it stopped, [(start, end, key_start, key_end, flags)], state, the Partial of the
    element it stopped at when that one was cut). key_start is -1 when `key` is not a member.
    Raises ScanError when the first element is not JSON."""
