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

The walk both scanners share is `engines/scanner.py`; the decoded bytes come from
`engines/chunks.py`, with or without a reader thread.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from mrfbatch.engines import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    DocumentHandler,
    Element,
    invalid_json,
    truncated_json,
)
from mrfbatch.engines.chunks import CHUNK, Chunks
from mrfbatch.engines.scanner import (
    CODE,
    GROUP_ID,
    HOLD,
    MAX_NESTING,
    SKIP,
    VALUE,
    Scanner,
)
from mrfbatch.errors import BackendError, JsonFormatError, UsageError

try:
    from mrfbatch import _jsonscan
except ImportError as exc:  # not built: running from src/ without `make` or `pip install`
    _jsonscan_missing: ImportError | None = exc
else:
    _jsonscan_missing = None

log = logging.getLogger(__name__)

SCANNERS = ("auto", "c", "msgspec")
# The C scanner accepts 5000 levels; msgspec, decoding a matched item, recurses once per level.
_DECODE_RECURSION = MAX_NESTING + 1000
_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW_SURROGATE = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_AT_BYTE = re.compile(r"\s*\(byte (\d+)\)")
_CODE_KEY = b'"billing_code"'
_CODE_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*"|[^,}\] \t\r\n]+)')


class _Probe(msgspec.Struct, gc=False):
    """An in_network item's own billing code; everything else is skipped (and validated)."""

    billing_code: Any = None


class _ReferenceId(msgspec.Struct, gc=False):
    """A provider reference's key; the rest is skipped."""

    provider_group_id: Any = None


_REFERENCE = msgspec.json.Decoder(_ReferenceId, float_hook=Decimal)
_PROBE = msgspec.json.Decoder(_Probe, float_hook=Decimal)


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
            walker: type[Scanner] = _CScanner
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
            sys.setrecursionlimit(max(recursion, MAX_NESTING))  # msgspec recurses per level
        chunks = Chunks(stream, self.chunk_size, threaded=self.threads > 1)
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


class _MsgspecScanner(Scanner):
    """msgspec validates each value; items are searched for `"billing_code"` keys."""

    def __init__(self, chunks: Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
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
                    self.name, self.base + self.pos, f"nested deeper than {MAX_NESTING} levels"
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


class _CScanner(Scanner):
    """mrfbatch._jsonscan validates each value, and finds the spans of one member's values."""

    def __init__(self, chunks: Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
        super().__init__(chunks, handler, name, hold)
        # Of the last value scanned with a key: the span of that key's value (the last one, as
        # a decode keeps; keys spelled with escapes count).
        self._span: tuple[int, int] | None = None
        self._passed = False  # the last item was not wanted and not held whole (`_value_end`)

    def _array(self, element: Callable[[int], None], key: bytes | None) -> None:
        """Like `Scanner._array`, but the scanner walks whole runs of elements per call."""
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
                element(self._value_end(SKIP, key, partial))
            if self._expect(b",]", "',' or ']'") == ord("]"):
                return

    def _element(self, element: Callable[[int], None], key: bytes | None, found: Element) -> None:
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

    def _references(self, found: list[Element]) -> None:
        """provider_references entries go to the handler in runs, as the scanner found them;
        one that needs more than its text and its provider_group_id's (not an object, no id, a
        lone surrogate or a key spelled with escapes, too long) goes by itself, decoded, in
        file order."""
        at = 0
        while at < len(found):
            at = self.handler.provider_references_raw(self.buf, found, at, self.max_value)
            if at < len(found):
                self._element(self._reference, GROUP_ID, found[at])
                at += 1

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
                key is CODE
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
            return VALUE.decode(view[start:stop])


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
