"""Types of the C extension mrfbatch._jsonscan (src/mrfbatch/_jsonscan.c)."""

KEY_ESCAPED: int
LONE_SURROGATE: int
MAX_DEPTH: int

class ScanError(ValueError):
    """Bytes that are not JSON: `args` is (offset in buf, reason)."""

class Partial:
    """Where scan_value stopped for want of data: pass it back with more."""

    resume_at: int  # offset from the value's start where the scan goes on

def scan_value(
    buf: bytes | bytearray,
    pos: int,
    eof: bool,
    key: bytes | None,
    partial: Partial | None = None,
    /,
) -> tuple[int, tuple[tuple[int, int], ...], int] | Partial | None:
    """Validate the JSON value at buf[pos]: (end, spans of `key`'s values, flags); None or a
    Partial when it runs past the end of buf; raises ScanError where it stops being JSON."""
