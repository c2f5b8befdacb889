"""Types of the C extension mrfbatch._jsonscan (src/mrfbatch/_jsonscan.c)."""

KEY_ESCAPED: int
LONE_SURROGATE: int
MAX_DEPTH: int

class ScanError(ValueError):
    """Bytes that are not JSON: `args` is (offset in buf, reason)."""

def scan_value(
    buf: bytes | bytearray, pos: int, eof: bool, key: bytes | None, /
) -> tuple[int, tuple[tuple[int, int], ...], int] | None:
    """Validate the JSON value at buf[pos]: (end, spans of `key`'s values, flags), or None
    when it runs past the end of buf; raises ScanError where it stops being JSON."""
