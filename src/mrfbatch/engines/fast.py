"""The fast engine: one pass of C per value finds where it ends; unwanted items stay undecoded.

How it walks a file:
- The top-level object is walked by hand, a few bytes at a time (keys, `:`, `,`).
- Each value (a header field, a provider reference, an in_network item) is validated from its
  first byte by the scanner, which says where it ends, or that it runs past the buffer (it gets
  more data and is tried again), or where it stops being JSON.
- An in_network item is only validated; the scanner also gives where the item's own
  `billing_code` value lies (a member of the item itself, not of its bundled_codes), and only an
  item whose code is wanted reaches the handler, as JSON text. Likewise a provider reference's
  `provider_group_id` is read off its span.

Two scanners do this:
- "c": `mrfbatch._jsonscan` (src/mrfbatch/_jsonscan.c), built with the package. It accepts
  what the reference parser (yajl) accepts, and reports the spans of the wanted key's values.
- "msgspec", used when the extension is not built (running from src/ without `make`): msgspec
  parses exactly one value (as `msgspec.Raw`) and then complains about the trailing `,` or `]`,
  telling where the value ended. Every `"billing_code":` key in an item's bytes is considered
  (those of bundled_codes too), so a wanted item is never skipped; the handler checks the
  decoded item's own code, so an item matched only through a nested code is dropped there.

Numbers with a fraction or exponent decode to Decimal, as in the reference engine, so group
ids keep their exact text and both engines hand the handler identical objects.
"""

from __future__ import annotations

import codecs
import gc
import logging
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from mrfbatch.engines import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    DocumentHandler,
    check_value_size,
    invalid_json,
    truncated_json,
)
from mrfbatch.errors import BackendError, FileKindError, JsonFormatError, UsageError

try:
    from mrfbatch import _jsonscan
except ImportError as exc:  # not built: running from src/ without `make` or `pip install`
    _jsonscan_missing: ImportError | None = exc
else:
    _jsonscan_missing = None

log = logging.getLogger(__name__)

CHUNK = 8 << 20
# An in_network item longer than this whose own billing_code is not wanted is not held whole:
# the C scanner's path drops what it has validated as more comes (see `_CScanner._value_end`).
HOLD = 8 << 20
# With a reader thread, each chunk comes behind this many spare bytes, where the scanning
# thread copies what it keeps of the last one (when it fits; else the chunk is appended).
HEAD = 1 << 20
SCANNERS = ("auto", "c", "msgspec")
_MAX_NESTING = 5000
# The C scanner accepts 5000 levels; msgspec, decoding a matched item, recurses once per level.
_DECODE_RECURSION = _MAX_NESTING + 1000
_ARRAYS = ("provider_references", "in_network")
_WS = re.compile(rb"[ \t\r\n]*")
_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW_SURROGATE = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_AT_BYTE = re.compile(r"\s*\(byte (\d+)\)")
_CODE_KEY = b'"billing_code"'
_CODE = b"billing_code"
_GROUP_ID = b"provider_group_id"
_CODE_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*"|[^,}\] \t\r\n]+)')
_WHAT = {_CODE: "an in_network item", _GROUP_ID: "a provider_references entry"}  # by `key`
# An element scan_elements found: (start, end, key_start, key_end, flags).
_Element = tuple[int, int, int, int, int]


class _Probe(msgspec.Struct, gc=False):
    """An in_network item's own billing code; everything else is skipped (and validated)."""

    billing_code: Any = None


class _ReferenceId(msgspec.Struct, gc=False):
    """A provider reference's key; the rest is skipped."""

    provider_group_id: Any = None


_SKIP = msgspec.json.Decoder(msgspec.Raw)
_REFERENCE = msgspec.json.Decoder(_ReferenceId, float_hook=Decimal)
_PROBE = msgspec.json.Decoder(_Probe, float_hook=Decimal)
_VALUE = msgspec.json.Decoder(float_hook=Decimal)
_KEY = msgspec.json.Decoder(str)


class FastEngine:
    """The fast engine; `threads=2` decompresses in a second thread.

    `scanner`: "c" (mrfbatch._jsonscan; BackendError when it is not built), "msgspec", or
    "auto", the C one when it can be imported. `max_value`: the largest value (bytes) held.
    """

    name = "fast"

    def __init__(
        self,
        chunk_size: int = CHUNK,
        threads: int = 1,
        scanner: str = "auto",
        hold: int = HOLD,
        max_value: int = DEFAULT_MAX_VALUE_MB * MB,
    ):
        if chunk_size < 1 or threads < 1 or hold < 0 or max_value < 1:
            raise ValueError("chunk_size, threads, hold and max_value must be positive")
        if scanner not in SCANNERS:
            raise UsageError(f"unknown scanner {scanner!r}; expected one of: {', '.join(SCANNERS)}")
        if scanner == "c" and _jsonscan_missing is not None:
            raise BackendError(
                f"the fast engine's C scanner mrfbatch._jsonscan is not built "
                f"({_jsonscan_missing}); `make .venv/.installed` or "
                "`python setup.py build_ext --inplace` builds it"
            )
        if scanner == "auto":
            scanner = "c" if _jsonscan_missing is None else "msgspec"
        self.chunk_size = chunk_size
        self.threads = threads
        self.scanner = scanner
        self.hold = hold
        self.max_value = max_value

    def scan(self, stream: BinaryIO, handler: DocumentHandler) -> None:
        gc_was_enabled = gc.isenabled()
        gc.disable()  # decoded items hold no cycles; collections would only cost time
        switch = sys.getswitchinterval()
        recursion = sys.getrecursionlimit()
        if self.scanner == "c":
            log.debug("fast engine: C scanner (mrfbatch._jsonscan)")
            walker: type[_Scanner] = _CScanner
            sys.setrecursionlimit(max(recursion, _DECODE_RECURSION))
        else:
            if _jsonscan_missing is not None:
                log.warning(
                    "fast engine: the C scanner is not built (%s), so values are validated "
                    "with msgspec, about half as fast; `make .venv/.installed` builds it",
                    _jsonscan_missing,
                )
            else:
                log.debug("fast engine: msgspec scanner")
            walker = _MsgspecScanner
            sys.setrecursionlimit(max(recursion, _MAX_NESTING))  # msgspec recurses per level
        chunks = _Chunks(stream, self.chunk_size, threaded=self.threads > 1)
        if self.threads > 1:
            sys.setswitchinterval(0.0005)  # hand the GIL back to the scanner promptly
        try:
            scanner = walker(chunks, handler, getattr(stream, "description", "the file"), self.hold)
            scanner.max_value = self.max_value
            scanner.run()
        finally:
            chunks.close()
            sys.setswitchinterval(switch)
            sys.setrecursionlimit(recursion)
            if gc_was_enabled:
                gc.enable()


def _copy_in(buf: bytearray, at: int, piece: bytes) -> int:
    """Write piece at buf[at:] (over stale bytes, or appended past the end); where it ends.

    Through a memoryview: a bytearray's own slice assignment first copies a `bytes` value
    into a temporary bytearray, so every byte would be copied twice.
    """
    end = at + len(piece)
    if end <= len(buf):
        with memoryview(buf) as view:
            view[at:end] = piece  # same length: a copy, no reallocation
    else:
        del buf[at:]
        buf += piece
    return end


class _Chunks:
    """Decoded bytes in chunks, read in this thread or prefetched by a reader thread.

    Read in this thread, a chunk comes as the decompressor's pieces (`next`). A reader thread
    (`threaded`) copies each chunk into a buffer of its own instead, behind HEAD spare bytes,
    and checks whether it is ASCII (`next_buffer`): the scanning thread then only copies what
    it keeps of the last chunk in front of it. Copying and checking every byte is then done
    while the scanning thread scans, not by it.
    """

    def __init__(self, stream: BinaryIO, size: int, threaded: bool):
        self._stream = stream
        self.size = size
        self.threaded = threaded
        self._queue: queue.Queue[tuple[bytearray, bool] | None | BaseException] | None = None
        self._free: list[bytearray] = []  # buffers handed back, for the reader to fill again
        self._stop = threading.Event()
        if threaded:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(
                target=self._prefetch, name="mrfbatch-reader", daemon=True
            )
            self._thread.start()

    def next(self) -> Iterator[bytes]:
        """The pieces of the next chunk (about `size` bytes; nothing at the end of the stream).

        The decompressor's pieces are handed out as they are, so they are copied once, into the
        scanner's buffer: joined first, each chunk would be a fresh allocation of `size` bytes
        whose pages the kernel must map and clear.
        """
        return self._pieces()

    def next_buffer(self) -> tuple[bytearray, bool] | None:
        """The reader thread's next chunk, at buffer[HEAD:], and whether it is all ASCII; None
        at the end of the stream."""
        assert self._queue is not None
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def recycle(self, buffer: bytearray) -> None:
        """A buffer next_buffer gave that is no longer used (one grown past HEAD + size is let
        go: it would hold its memory)."""
        if HEAD <= len(buffer) <= HEAD + self.size and len(self._free) < 4:
            self._free.append(buffer)

    def _prefetch(self) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                item: tuple[bytearray, bool] | None | BaseException = self._fill()
            except BaseException as exc:  # handed to the scanning thread, which raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, tuple):
                return

    def _fill(self) -> tuple[bytearray, bool] | None:
        try:
            buffer = self._free.pop()
        except IndexError:
            buffer = bytearray(HEAD + self.size)
        filled, ascii = HEAD, True
        for piece in self._pieces():
            filled = _copy_in(buffer, filled, piece)
            ascii = ascii and piece.isascii()
        if filled == HEAD:
            return None
        del buffer[filled:]
        return buffer, ascii

    def _pieces(self) -> Iterator[bytes]:
        """About `size` bytes (fewer only at the end): decompressors hand out smaller pieces,
        and every chunk edge costs a re-validation of the value that straddles it."""
        total = 0
        while total < self.size:
            part = self._stream.read(self.size - total)
            if not part:
                return
            yield part
            total += len(part)

    def close(self) -> None:
        self._stop.set()
        if self._queue is not None:
            self._thread.join(timeout=5)


class _Scanner:
    """Walks the document; a subclass validates values and reads keys off items."""

    max_value = DEFAULT_MAX_VALUE_MB * MB  # a value held whole that is larger fails

    def __init__(self, chunks: _Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
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
            filled = _copy_in(buf, filled, piece)
        del buf[filled:]  # a shorter length keeps the allocation (unless under half of it)
        if filled == keep:
            self._check_utf8(b"", self.base + filled, True)
            self.eof = True
            return False
        return True

    def _next_buffer(self) -> bool:
        """`_more` with a reader thread: its buffer holds the chunk at [HEAD:]."""
        item = self.chunks.next_buffer()
        if item is None:
            self._check_utf8(b"", self.base + len(self.buf), True)
            self.eof = True
            return False
        new, ascii = item
        keep = len(self.buf) - self.pos
        if keep <= HEAD:  # what is kept goes in front of the chunk
            old, start = self.buf, HEAD - keep
            with memoryview(new) as to, memoryview(old) as kept:
                to[start:HEAD] = kept[self.pos :]
            self.base += self.pos - start
            self.buf, self.pos = new, start
            self.chunks.recycle(old)  # the reader may fill it again at once
            at = HEAD
        else:  # a long value is held: the chunk goes after it
            if self.pos:
                del self.buf[: self.pos]
                self.base += self.pos
                self.pos = 0
            at = len(self.buf)
            with memoryview(new) as chunk:
                self.buf += chunk[HEAD:]
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

    def _decode(self, end: int, decoder: msgspec.json.Decoder[Any] = _VALUE) -> Any:
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
            self._value_end(_SKIP)  # reports invalid JSON first, as the reference engine does
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
                self._array(self._item, _CODE)
            else:
                self._array(self._reference, _GROUP_ID)
            self.handler.array_done(key)
        elif wanted:
            self.handler.header(key, self._decode(self._value_end(_VALUE)))
        else:
            self.pos = self._value_end(_SKIP)

    def _array(self, element: Callable[[int], None], key: bytes | None) -> None:
        """Walk an array (its `[` consumed): `element(end)` takes buf[pos:end], moves pos.

        `key`: the member of each element `_may_match` or `_group_id` will look at.
        """
        if self._peek() == ord("]"):
            self.pos += 1
            return
        while True:
            element(self._value_end(_SKIP, key))
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


class _MsgspecScanner(_Scanner):
    """msgspec validates each value; items are searched for `"billing_code"` keys."""

    def __init__(self, chunks: _Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
        super().__init__(chunks, handler, name, hold)
        self._retried_at = -1  # decoded offset of the value last retried with more data
        self._surrogates_checked = 0  # decoded offset up to which no lone surrogate is left

    def _value_end(self, decoder: msgspec.json.Decoder[Any], key: bytes | None = None) -> int:
        """Validate the value at pos with `decoder`; return where it ends (pos unchanged)."""
        while True:
            view = memoryview(self.buf)[self.pos :]
            size = len(view)
            try:
                decoder.decode(view)
                message = None
            except RecursionError:
                message = "RecursionError"
            except msgspec.DecodeError as exc:
                message = str(exc)
            finally:
                view.release()  # the buffer cannot grow while a view of it exists
            if message is None:
                # The value ran to the end of the buffer: a number may go on in the next chunk.
                self._check_size(key, len(self.buf) - self.pos)
                if not self._grow():
                    return len(self.buf)
                continue
            if message == "RecursionError":
                raise invalid_json(
                    self.name, self.base + self.pos, f"nested deeper than {_MAX_NESTING} levels"
                )
            trailing = _TRAILING.search(message)
            if trailing:
                end = self.pos + int(trailing.group(1)) - 1
                if end <= self.pos or self.buf[end] in b" \t\r\n":  # pragma: no cover
                    raise RuntimeError(f"unexpected msgspec error position: {message}")
                self._check_size(key, end - self.pos)
                return end
            at = _AT_BYTE.search(message)
            # A value cut by the end of the buffer is "truncated", or, inside a number
            # (`2163.`), "invalid" at the very end: either way it needs more data. But msgspec
            # also says "truncated" for an unpaired surrogate escape, so a value that is still
            # cut after more data came is searched for one.
            cut = "truncated" in message or (at is not None and int(at.group(1)) >= size)
            again = self.base + self.pos == self._retried_at
            if (again or not cut) and self._lone_surrogate():
                continue
            self._retried_at = self.base + self.pos
            if cut:
                self._check_size(key, len(self.buf) - self.pos)
            if cut and self._grow():
                continue
            if cut and self._lone_surrogate():
                continue
            if cut:
                raise truncated_json(self.name, self.base + len(self.buf))
            raise self._invalid(message)

    def _lone_surrogate(self) -> bool:
        """Write an unpaired high-surrogate escape ahead as `?`, as the reference does.

        msgspec calls `"\\ud800"` truncated input; left alone, that would read the whole rest of
        the file looking for the other half. The escape is replaced in place by the 6 bytes
        `\\u003f`, so offsets stay the same. Bytes already searched are not searched again.
        """
        buf = self.buf
        start = max(self.pos, self._surrogates_checked - self.base)
        for match in _HIGH_SURROGATE.finditer(buf, start):
            at, end = match.start(), match.end()
            backslashes = (at - self.pos) - len(buf[self.pos : at].rstrip(b"\\"))
            if backslashes % 2 or _LOW_SURROGATE.match(buf, end):
                continue  # `\\ud800` is text, or the pair is complete
            if end + 6 > len(buf) and not self.eof:
                break  # its other half may come with the next chunk
            buf[at:end] = b"\\u003f"
            return True
        self._surrogates_checked = self.base + max(start, len(buf) - 12)
        return False

    def _invalid(self, message: str) -> JsonFormatError:
        at = _AT_BYTE.search(message)
        offset = self.base + self.pos + (int(at.group(1)) if at else 0)
        detail = _AT_BYTE.sub("", message).replace("JSON is malformed: ", "")
        return invalid_json(self.name, offset, detail)

    def _may_match(self, end: int) -> bool:
        """Whether any billing code in buf[pos:end] is wanted, its own or a nested one."""
        if self.buf[self.pos] != ord("{"):
            return True  # not an object: let the handler count it as invalid
        buf, found = self.buf, False
        if buf.find(b"\\u", self.pos, end) >= 0:
            # A key could be spelled with escapes ("billing\u005fcode"), which the byte search
            # below would miss: let msgspec read this item's own code instead.
            with memoryview(buf) as view:
                return self.handler.wants(_PROBE.decode(view[self.pos : end]).billing_code)
        at = buf.find(_CODE_KEY, self.pos, end)
        while at >= 0:
            at += len(_CODE_KEY)
            value = _CODE_VALUE.match(buf, at, end)  # None: "billing_code" was not a key
            if value is not None:
                found = True
                token = value.group(1)
                if token[:1] in (b"[", b"{") or self.handler.wants(_code_text(token)):
                    return True  # an array or object as a code: let the handler judge it
            at = buf.find(_CODE_KEY, at, end)
        return not found and self.handler.wants(None)

    def _group_id(self, end: int) -> object:
        with memoryview(self.buf) as view:
            return _REFERENCE.decode(view[self.pos : end]).provider_group_id


class _CScanner(_Scanner):
    """mrfbatch._jsonscan validates each value, and finds the spans of one member's values."""

    def __init__(self, chunks: _Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
        super().__init__(chunks, handler, name, hold)
        # Of the last value scanned with a key: the span of that key's value (the last one, as
        # a decode keeps; keys spelled with escapes count).
        self._span: tuple[int, int] | None = None
        self._passed = False  # the last item was not wanted and not held whole (`_value_end`)

    def _array(self, element: Callable[[int], None], key: bytes | None) -> None:
        """Like `_Scanner._array`, but the scanner walks whole runs of elements per call."""
        if self._peek() == ord("]"):
            self.pos += 1
            return
        while True:
            try:
                pos, found, state, partial = _jsonscan.scan_elements(
                    self.buf, self.pos, self.eof, key
                )
            except _jsonscan.ScanError as exc:
                offset, reason = exc.args
                raise self._invalid(offset, reason) from None
            if element == self._reference:
                self._references(found)
            else:
                for found_element in found:
                    self._element(element, key, found_element)
            self.pos = pos
            if state == _jsonscan.CLOSED:
                return
            if state == _jsonscan.AT_ELEMENT:  # cut by the buffer's end, or not JSON
                element(self._value_end(_SKIP, key, partial))
            if self._expect(b",]", "',' or ']'") == ord("]"):
                return

    def _element(self, element: Callable[[int], None], key: bytes | None, found: _Element) -> None:
        """Hand one element `scan_elements` found to `element`."""
        start, end, key_start, key_end, flags = found
        self.pos = start
        self._passed = False
        if end - start > self.max_value:
            self._check_size(key, end - start)
        self._span = (key_start, key_end) if key_start >= 0 else None
        if flags & _jsonscan.LONE_SURROGATE:
            _repair_lone_surrogates(self.buf, start, end)
        element(end)

    def _references(self, found: list[_Element]) -> None:
        """provider_references entries go to the handler in runs, with their provider_group_id's
        JSON text; one that needs more than that (not an object, no id, a lone surrogate or a
        key spelled with escapes, too long) goes by itself, in file order."""
        buf, run, largest = self.buf, [], self.max_value
        for element in found:
            start, end, key_start, key_end, flags = element
            if not flags and key_start >= 0 and buf[start] == 0x7B and end - start <= largest:
                run.append((buf[key_start:key_end], start, end))
                continue
            if run:
                self.handler.provider_references_raw(buf, run)
                run = []
            self._element(self._reference, _GROUP_ID, element)
        if run:
            self.handler.provider_references_raw(buf, run)

    def _value_end(
        self,
        decoder: msgspec.json.Decoder[Any],
        key: bytes | None = None,
        partial: _jsonscan.Partial | None = None,
    ) -> int:
        """`partial`: where a scan of this value stopped for want of data: it goes on there.

        An in_network item (`key` is billing_code) longer than `hold` whose own code is known
        and not wanted is passed over as it streams: what has been validated is dropped from
        the buffer, so such an item costs no more memory than `hold` and a chunk.
        """
        self._passed = False
        started = self.base + self.pos
        while True:
            eof = self.eof
            try:
                result = _jsonscan.scan_value(self.buf, self.pos, eof, key, partial)
            except _jsonscan.ScanError as exc:
                offset, reason = exc.args
                raise self._invalid(offset, reason) from None
            if isinstance(result, tuple):
                break
            if eof:
                raise truncated_json(self.name, self.base + len(self.buf))
            partial = result
            if (
                key is _CODE
                and partial is not None
                and len(self.buf) - self.pos > self.hold
                and (self._passed or self._unwanted(partial))
            ):
                drop = partial.droppable
                partial = partial.forget(drop)
                self.pos += drop
                self._passed = True
            self._check_size(key, len(self.buf) - self.pos)  # what is held of the value
            # The scan resumes after the last complete value. When that is near the end of the
            # buffer, one more chunk will do: a long skipped item is then held about once, not
            # up to twice. Otherwise (a long string, say) at least as much again, so that what
            # lies after the resume point is not scanned over and over.
            unscanned = len(self.buf) - self.pos - (partial.resume_at if partial else 0)
            if partial is not None and unscanned <= self.chunks.size:
                self._more()
            else:
                self._grow()
        end, spans, flags = result
        self._check_size(key, end - self.pos)
        self._span = spans[-1] if spans else None
        if self._passed and self._span is not None:
            self._check_passed(started)
        if flags & _jsonscan.LONE_SURROGATE:
            _repair_lone_surrogates(self.buf, self.pos, end)
        return end

    def _unwanted(self, partial: _jsonscan.Partial) -> bool:
        """Whether the item being scanned (cut at the buffer's end) is not wanted, by its own
        billing_code as far as it has been read."""
        if not partial.spans:
            return False  # the code may come later
        start, stop = partial.spans[-1]
        token = bytes(self.buf[self.pos + start : self.pos + stop])
        return token[:1] not in (b"[", b"{") and not self.handler.wants(_code_text(token))

    def _check_passed(self, started: int) -> None:
        """An item passed over names billing_code again after its first code: a decode keeps
        the last one, which can no longer be honoured if it is wanted."""
        assert self._span is not None
        start, stop = self._span
        token = bytes(self.buf[start:stop])
        if token[:1] not in (b"[", b"{") and not self.handler.wants(_code_text(token)):
            return
        raise JsonFormatError(
            f"the in_network item at decoded byte {started} of {self.name} names its "
            f"billing_code again {self.base + self.pos - started:,} bytes in, after a code that "
            "is not wanted; items that long are not kept whole, so which code counts cannot be "
            "decided. Extract this file with the reference engine (--engine reference)."
        )

    def _invalid(self, offset: int, reason: str) -> JsonFormatError:
        if reason.startswith("expected") and offset < len(self.buf):
            reason += f", found {bytes(self.buf[offset : offset + 1])!r}"
        return invalid_json(self.name, self.base + offset, reason)

    def _may_match(self, end: int) -> bool:
        """Whether the item's own billing_code is wanted (the last one, as a decode keeps)."""
        if self._passed:
            return False
        buf = self.buf
        if buf[self.pos] != ord("{"):
            return True  # not an object: let the handler count it as invalid
        if self._span is None:
            return self.handler.wants(None)
        start, stop = self._span
        if buf[start] in b"[{":
            return True  # an array or object as a code: let the handler judge it
        return self.handler.wants(_code_text(bytes(buf[start:stop])))

    def _group_id(self, end: int) -> object:
        if self._span is None:
            return None
        start, stop = self._span
        with memoryview(self.buf) as view:
            return _VALUE.decode(view[start:stop])


def _repair_lone_surrogates(buf: bytearray, start: int, end: int) -> None:
    """Write each unpaired high-surrogate escape in buf[start:end] as `\\u003f` ("?").

    That is what the reference parser (yajl) decodes it to, and msgspec rejects it when the
    handler decodes the item. The same length, so offsets stay. buf[start:end] is valid JSON.
    """
    found = list(_HIGH_SURROGATE.finditer(buf, start, end))
    for match in found:
        at, after = match.span()
        first = at
        while first > start and buf[first - 1] == ord("\\"):
            first -= 1
        if (at - first) % 2 or _LOW_SURROGATE.match(buf, after, end):
            continue  # `\\ud800` is text, or the pair is complete
        buf[at:after] = b"\\u003f"


def _code_text(token: bytes) -> object:
    """A billing code's value as the reference engine would see it."""
    if token.startswith(b'"'):
        return (
            msgspec.json.decode(token) if b"\\" in token else token[1:-1].decode("utf-8", "replace")
        )
    if token in (b"null", b"true", b"false"):
        return msgspec.json.decode(token)
    try:
        return int(token) if token.lstrip(b"-").isdigit() else Decimal(token.decode())
    except (ArithmeticError, ValueError):
        return token.decode("utf-8", "replace")
