"""The bytes the fast engine's scanner sees: decoded chunks held in one buffer that slides.

`ScanBuffer` holds buf[pos:], the part of the decoded stream not yet consumed: it appends the
next chunk in place, drops the consumed front, checks that every byte is UTF-8, and reads the
punctuation and blanks between values. What a value is, is the scanner's business
(`engines/scanner.py`); where the chunks come from, `engines/chunks.py`.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import msgspec

from mrfbatch import _jsonscan
from mrfbatch.engines.chunks import Chunks, copy_in
from mrfbatch.engines.protocol import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    check_value_size,
    invalid_json,
    truncated_json,
)

CODE = b"billing_code"  # the member read off an in_network item (its own billing code)
GROUP_ID = b"provider_group_id"  # and off a provider_references entry
_WHAT = {CODE: "an in_network item", GROUP_ID: "a provider_references entry"}  # by `key`
BLANKS = re.compile(rb"[ \t\r\n]*")  # JSON's whitespace


class ScanBuffer:
    """Decoded bytes from `chunks`: buf[pos:] is what is not consumed yet, buf[0] is at decoded
    offset `base`, and `eof` says that no chunk is left."""

    max_value = DEFAULT_MAX_VALUE_MB * MB  # a value held whole that is larger fails

    def __init__(self, chunks: Chunks, name: str):
        self.chunks = chunks
        self.name = name
        # A bytearray: the consumed front is dropped and chunks appended in place, so a long
        # value is held once, not twice, while it grows.
        self.buf = bytearray()
        self.pos = 0
        self.base = 0  # decoded offset of buf[0]
        self.eof = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_pending = False

    def _more(self) -> bool:
        """Append the next chunk (keeping buf[pos:]); False at the end of the stream.

        The buffer is reused, not rebuilt: what is kept moves to the front and the chunk is
        copied in over the old bytes. Dropping the front with `del` and appending would make
        CPython allocate and copy a new buffer per chunk, whose fresh pages the kernel must
        then map and clear. With a reader thread, the chunk comes in a buffer of its own, and
        what is kept is copied in front of it when it fits.
        """
        if self.eof:
            return False
        if self.chunks.threaded:
            return self._next_buffer()
        buf = self.buf
        keep = len(buf) - self.pos
        if self.pos:
            with memoryview(buf) as view:
                view[:keep] = view[self.pos :]
            self.base += self.pos
            self.pos = 0
        filled = keep  # buf[:filled] is current; the rest is stale until overwritten
        if self.chunks.direct:
            filled = self.chunks.read_into(buf, keep)
            with memoryview(buf) as view, view[keep:filled] as chunk:
                self._check_utf8(chunk, self.base + keep, False)
        else:
            for piece in self.chunks.next():
                self._check_utf8(piece, self.base + filled, piece.isascii())
                filled = copy_in(buf, filled, piece)
        del buf[filled:]  # a shorter length keeps the allocation (unless under half of it)
        if filled == keep:
            self._check_utf8(b"", self.base + filled, True)
            self.eof = True
            return False
        return True

    def _next_buffer(self) -> bool:
        """`_more` with a reader thread: its buffer holds the chunk at [head:]."""
        item = self.chunks.next_buffer()
        if item is None:
            self._check_utf8(b"", self.base + len(self.buf), True)
            self.eof = True
            return False
        new, valid = item
        keep = len(self.buf) - self.pos
        head = self.chunks.head
        if keep <= head:  # what is kept goes in front of the chunk
            old, start = self.buf, head - keep
            with memoryview(new) as to, memoryview(old) as kept:
                to[start:head] = kept[self.pos :]
            self.base += self.pos - start
            self.buf, self.pos = new, start
            self.chunks.recycle(old)  # the reader may fill it again at once
            at = head
        else:  # a long value is held: the chunk goes after it
            if self.pos:
                del self.buf[: self.pos]
                self.base += self.pos
                self.pos = 0
            at = len(self.buf)
            with memoryview(new) as chunk:
                self.buf += chunk[head:]
            self.chunks.recycle(new)
        with memoryview(self.buf) as view, view[at:] as chunk:
            self._check_utf8(chunk, self.base + at, valid)
        return True

    def _check_utf8(self, chunk: bytes | memoryview, at: int, valid: bool) -> None:
        """Reject bytes that are not UTF-8, as the reference parser does, skipped values too.

        `at` is the decoded offset of chunk[0]; `valid`, whether chunk is known to be whole,
        valid UTF-8 (all ASCII). The scanner does not check the UTF-8 of what it skips; this
        check costs next to nothing on ASCII chunks. Other chunks are checked in C
        (`utf8_check`, without the GIL); Python's decoder, which would make a str of
        each (0.55 s per GB of mostly-ASCII text here), only takes what C does not find whole
        and valid: a character cut by the chunk's end, or the bytes that are not UTF-8, whose
        error it words.
        """
        if chunk and not valid and not self._utf8_pending:
            status, end = _jsonscan.utf8_check(chunk)
            if status == _jsonscan.UTF8_VALID:
                return
            if status == _jsonscan.UTF8_CUT:  # the decoder keeps the start of the character
                chunk, at = chunk[end:], at + end
        if self._utf8_pending or not valid:
            try:
                self._utf8.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                if not chunk:  # the text stops inside a multi-byte character
                    raise truncated_json(self.name, at) from None
                raise invalid_json(self.name, at + exc.start, f"not UTF-8 ({exc.reason})") from None
            self._utf8_pending = bool(self._utf8.getstate()[0])

    def _grow(self) -> bool:
        """Get at least as much new data as is pending, so long values cost O(n log n)."""
        wanted = max(len(self.buf) - self.pos, 1)
        got = False
        start = len(self.buf) - self.pos
        while len(self.buf) - self.pos - start < wanted and self._more():
            got = True
        return got

    def _check_size(self, key: bytes | None, size: int) -> None:
        """The value at pos is `size` bytes or more: fail when that is over `max_value`. `key`:
        the member the scanner reads off it (CODE, GROUP_ID), which says what the value is."""
        if size > self.max_value:
            what = _WHAT.get(key or b"", "a value")
            check_value_size(self.name, what, size, self.max_value, self.base + self.pos)

    def _peek(self) -> int | None:
        """The next non-blank byte (not consumed), or None at the end."""
        while True:
            match = BLANKS.match(self.buf, self.pos)
            assert match is not None
            self.pos = match.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return None

    def _expect(self, allowed: bytes, what: str) -> int:
        c = self._peek()
        if c is None:
            raise truncated_json(self.name, self.base + self.pos)
        if c not in allowed:
            raise invalid_json(
                self.name,
                self.base + self.pos,
                f"expected {what}, found {bytes([c])!r}",
            )
        self.pos += 1
        return c

    def _decode(self, end: int, decoder: msgspec.json.Decoder[Any]) -> Any:
        """Decode buf[pos:end], a value the scanner has validated, and move pos to end."""
        with memoryview(self.buf) as view:
            value = decoder.decode(view[self.pos : end])
        self.pos = end
        return value
