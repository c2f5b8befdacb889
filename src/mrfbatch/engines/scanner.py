"""The document walk of the fast engine, shared by its two scanners (see engines/fast.py).

`Scanner` holds the buffer, walks the top-level object and its two arrays, and hands values to
the handler; a subclass says where each value ends and reads the keys the walk needs.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from mrfbatch.engines import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    DocumentHandler,
    check_value_size,
    invalid_json,
    truncated_json,
)
from mrfbatch.engines.chunks import Chunks, copy_in
from mrfbatch.errors import FileKindError

# An in_network item longer than this whose own billing_code is not wanted is not held whole:
# the C scanner's path drops what it has validated as more comes (see `_CScanner._value_end`).
HOLD = 8 << 20
MAX_NESTING = 5000  # the deepest nesting either scanner accepts (the C scanner's limit)
CODE = b"billing_code"  # the key whose value `_may_match` looks at, in an in_network item
GROUP_ID = b"provider_group_id"  # and `_group_id`, in a provider reference
_ARRAYS = ("provider_references", "in_network")
_WS = re.compile(rb"[ \t\r\n]*")
_WHAT = {CODE: "an in_network item", GROUP_ID: "a provider_references entry"}  # by `key`

SKIP = msgspec.json.Decoder(msgspec.Raw)
VALUE = msgspec.json.Decoder(float_hook=Decimal)
_KEY = msgspec.json.Decoder(str)


class Scanner:
    """Walks the document; a subclass validates values and reads keys off items."""

    max_value = DEFAULT_MAX_VALUE_MB * MB  # a value held whole that is larger fails

    def __init__(self, chunks: Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
        self.chunks = chunks
        self.handler = handler
        self.name = name
        self.hold = hold
        # A bytearray: the consumed front is dropped and chunks appended in place, so a long
        # value is held once, not twice, while it grows.
        self.buf = bytearray()
        self.pos = 0
        self.base = 0  # decoded offset of buf[0]
        self.eof = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_pending = False

    # buffer

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
        new, ascii = item
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
            self._check_utf8(chunk, self.base + at, ascii)
        return True

    def _check_utf8(self, chunk: bytes | memoryview, at: int, ascii: bool) -> None:
        """Reject bytes that are not UTF-8, as the reference parser does, skipped values too.

        `at` is the decoded offset of chunk[0]; `ascii`, whether chunk is all ASCII. The
        scanners do not check the UTF-8 of what they skip; this check costs next to nothing on
        ASCII chunks.
        """
        if self._utf8_pending or not ascii:
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
        """The value at pos is `size` bytes or more (`key` as in `_value_end`)."""
        if size > self.max_value:
            what = _WHAT.get(key or b"", "a value")
            check_value_size(self.name, what, size, self.max_value, self.base + self.pos)

    def _peek(self) -> int | None:
        """The next non-blank byte (not consumed), or None at the end."""
        while True:
            match = _WS.match(self.buf, self.pos)
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

    def _decode(self, end: int, decoder: msgspec.json.Decoder[Any] = VALUE) -> Any:
        with memoryview(self.buf) as view:
            value = decoder.decode(view[self.pos : end])
        self.pos = end
        return value

    # document

    def run(self) -> None:
        first = self._peek()
        if first is None:
            raise truncated_json(self.name, self.base + self.pos)
        if first != ord("{"):
            if first == ord("["):
                raise FileKindError(
                    "the top level of the JSON is an array; an in-network file is an object "
                    "with an `in_network` array"
                )
            self._value_end(SKIP)  # reports invalid JSON first, as the reference engine does
            raise FileKindError(
                "the top level of the JSON is a single value; an in-network file is an object "
                "with an `in_network` array"
            )
        self.pos += 1
        if self._peek() == ord("}"):
            self.pos += 1
        else:
            while True:
                self._member()
                if self._expect(b",}", "',' or '}'") == ord("}"):
                    break
        if self._peek() is not None:
            raise invalid_json(
                self.name, self.base + self.pos, "trailing garbage after the top-level object"
            )

    def _member(self) -> None:
        if self._peek() != ord('"'):
            self._expect(b'"', "a key")
        key = self._decode(self._value_end(_KEY), _KEY)
        self._expect(b":", "':'")
        wanted = self.handler.top_level_key(key)
        c = self._peek()
        if c is None:
            raise truncated_json(self.name, self.base + self.pos)
        if key in _ARRAYS and c == ord("["):
            self.pos += 1
            if not wanted:
                self._array(self._skip_to, None)
            elif key == "in_network":
                self._array(self._item, CODE)
            else:
                self._array(self._reference, GROUP_ID)
            self.handler.array_done(key)
        elif wanted:
            self.handler.header(key, self._decode(self._value_end(VALUE)))
        else:
            self.pos = self._value_end(SKIP)

    def _array(self, element: Callable[[int], None], key: bytes | None) -> None:
        """Walk an array (its `[` consumed): `element(end)` takes buf[pos:end], moves pos.

        `key`: the member of each element `_may_match` or `_group_id` will look at.
        """
        if self._peek() == ord("]"):
            self.pos += 1
            return
        while True:
            element(self._value_end(SKIP, key))
            if self._expect(b",]", "',' or ']'") == ord("]"):
                return

    def _skip_to(self, end: int) -> None:
        self.pos = end

    def _reference(self, end: int) -> None:
        """A provider_references entry goes to the handler as JSON text: most never matter."""
        if self.buf[self.pos] != ord("{"):
            self.handler.provider_reference(self._decode(end))  # not an object: counted there
            return
        group_id = self._group_id(end)
        self.handler.provider_reference_raw(group_id, bytes(self.buf[self.pos : end]))
        self.pos = end

    def _item(self, end: int) -> None:
        """An in_network item: decoded only when one of its billing codes may be wanted."""
        if self._may_match(end):
            # A view, not a copy: a matched item can be tens of MB. Released after the call
            # (the buffer cannot be resized while a view of it exists).
            with memoryview(self.buf)[self.pos : end] as raw:
                self.handler.in_network_item_raw(raw)
        else:
            self.handler.skipped_item()
        self.pos = end

    # what a scanner provides

    def _value_end(self, decoder: msgspec.json.Decoder[Any], key: bytes | None = None) -> int:
        """Validate the value at pos; return where it ends (pos unchanged).

        `decoder` is what the value will be decoded with, if at all; `key` names the member
        `_may_match` or `_group_id` will look at next.
        """
        raise NotImplementedError

    def _may_match(self, end: int) -> bool:
        """Whether the item buf[pos:end] may be wanted (never False for a wanted item)."""
        raise NotImplementedError

    def _group_id(self, end: int) -> object:
        """The provider_group_id of the reference (an object) buf[pos:end]."""
        raise NotImplementedError
