"""The fast engine's walk of a document, with the C scanner (mrfbatch._jsonscan).

`Scanner` walks the top-level object by hand, a few bytes at a time (keys, `:`, `,`), and has
each value validated from its first byte by the C scanner, which says where it ends, or that it
runs past the buffer (more data is read and the scan goes on where it stopped), or where it
stops being JSON. Array elements are scanned in runs, many per call. The scanner also reports
where the value of one member lies: an in_network item's own `billing_code` (a member of the
item itself, not of its bundled_codes) and a provider reference's `provider_group_id`.

With `structural` set (the default: `validate: structural`), what may be skipped unread is
only skimmed (_jsonscan_skim.c): when a whitelist is given, the containers inside each
in_network item (its negotiated_rates, bundled codes...), whose members are not needed to find
the item's code; the elements of an unwanted array; an unwanted top-level value. An item whose
code is wanted is then scanned again in full before it reaches the handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter

import msgspec

from mrfbatch import _jsonscan
from mrfbatch.engines.buffer import BLANKS, CODE, GROUP_ID, ScanBuffer
from mrfbatch.engines.chunks import Chunks
from mrfbatch.engines.protocol import DocumentHandler, Element, invalid_json, truncated_json
from mrfbatch.errors import FileKindError, JsonFormatError

# An in_network item longer than this whose own billing_code is not wanted is not held whole:
# what has been validated is dropped as more comes (see `Scanner._value_end`).
HOLD = 8 << 20
MAX_NESTING = _jsonscan.MAX_DEPTH  # the deepest nesting the scanner accepts
_ARRAYS = ("provider_references", "in_network")
_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW_SURROGATE = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_FLAGS = itemgetter(4)  # of an Element

# Numbers with a fraction or exponent decode to Decimal, as in the reference engine, so header
# values keep their exact digits and both engines hand the handler identical objects.
_VALUE = msgspec.json.Decoder(float_hook=Decimal)
_KEY = msgspec.json.Decoder(str)


class Scanner(ScanBuffer):
    """Walks one document from `chunks`, handing what it finds to `handler`."""

    def __init__(self, chunks: Chunks, handler: DocumentHandler, name: str, hold: int = HOLD):
        super().__init__(chunks, name)
        self.handler = handler
        self.hold = hold
        # Of the last value scanned with a key: the span of that key's value (the last one, as
        # a decode keeps; keys spelled with escapes count).
        self._span: tuple[int, int] | None = None
        self._flags = 0  # and its flags
        self._passed = False  # the last item was not wanted and not held whole (`_value_end`)
        self.structural = False  # skim what may be skipped (see the module's docstring)
        self._skim = 0  # the depth from which the elements of the array walked are skimmed

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
            self._value_end()  # reports invalid JSON first, as the reference engine does
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
        key = self._decode(self._value_end(), _KEY)
        self._expect(b":", "':'")
        wanted = self.handler.top_level_key(key)
        c = self._peek()
        if c is None:
            raise truncated_json(self.name, self.base + self.pos)
        if key in _ARRAYS and c == ord("["):
            self.pos += 1
            if not wanted:
                self._array(self._skip_to, None, skim=1)
            elif key == "in_network":
                # Every item extracted: the C reader checks each item it reads (see _items).
                self._array(self._item, CODE, skim=1 if self.handler.wants_all() else 2)
            else:
                self._array(self._reference, GROUP_ID)
        elif wanted:
            self.handler.header(key, self._decode(self._value_end(), _VALUE))
        else:
            self.pos = self._value_end(skim=1 if self.structural else 0)

    def _array(self, element: Callable[[int], None], key: bytes | None, skim: int = 0) -> None:
        """Walk an array (its `[` consumed): `element(end)` takes buf[pos:end], moves pos.

        The scanner walks whole runs of elements per call. `key`: the member of each element
        whose value's span is reported (see `_may_match`, `_reference`). `skim`: containers
        that reach this depth inside an element (1: the element itself) are only skimmed, when
        `structural` is set.
        """
        if self._peek() == ord("]"):
            self.pos += 1
            return
        self._skim = skim if self.structural else 0
        while True:
            try:
                pos, found, state, partial = _jsonscan.scan_elements(
                    self.buf, self.pos, self.eof, key, self._skim
                )
            except _jsonscan.ScanError as exc:
                offset, reason = exc.args
                raise self._invalid(offset, reason) from None
            if element == self._reference:
                self._references(found)
            elif element == self._item and self.handler.wants_all():
                self._items(found)
            else:
                for found_element in found:
                    self._element(element, key, found_element)
            self.pos = pos
            if state == _jsonscan.CLOSED:
                return
            if state == _jsonscan.AT_ELEMENT:  # cut by the buffer's end, or not JSON
                element(self._value_end(key, partial, self._skim))
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

    def _skip_to(self, end: int) -> None:
        self.pos = end

    def _references(self, found: list[Element]) -> None:
        """provider_references entries go to the handler in runs, as the scanner found them:
        most never matter, so none is decoded here."""
        if self._run(found, GROUP_ID):
            self.handler.provider_references(self.buf, found)

    def _items(self, found: list[Element]) -> None:
        """in_network items go to a handler that wants every one (`wants_all`) in runs too:
        one call per run instead of several per item. With `structural`, they were only
        skimmed: what the C reader accepts it checks as it reads, and any other item is
        validated in full (`_validate`) before the handler decodes it."""
        if self._run(found, CODE):
            self.handler.in_network_items(self.buf, found, self._validate if self._skim else None)

    def _validate(self, start: int, end: int) -> None:
        """Validate in full an element found at buf[start:end] that was only skimmed."""
        self.pos = start
        self._rescan(end)

    def _run(self, found: list[Element], key: bytes) -> bool:
        """Ready a run of elements for the handler (each within `max_value`, lone surrogate
        escapes repaired); False when it is empty."""
        if not found:
            return False
        if found[-1][1] - found[0][0] > self.max_value:  # else no element can be larger
            for start, end, *_ in found:
                self.pos = start
                self._check_size(key, end - start)
        if any(map(_FLAGS, found)):
            for start, end, _, _, flags in found:
                if flags & _jsonscan.LONE_SURROGATE:
                    _repair_lone_surrogates(self.buf, start, end)
        return True

    def _reference(self, end: int) -> None:
        """One provider_references entry `_value_end` scanned (cut by the buffer's end): it
        may start after blanks."""
        match = BLANKS.match(self.buf, self.pos, end)
        assert match is not None
        key_start, key_end = self._span or (-1, -1)
        entry = (match.end(), end, key_start, key_end, self._flags)
        self.handler.provider_references(self.buf, [entry])
        self.pos = end

    def _item(self, end: int) -> None:
        """An in_network item: handed over only when its own billing code may be wanted (and
        then first scanned in full, when it was only skimmed)."""
        if self._may_match(end):
            if self._skim:
                self._rescan(end)
            # A view, not a copy: a matched item can be tens of MB. Released after the call
            # (the buffer cannot be resized while a view of it exists).
            with memoryview(self.buf)[self.pos : end] as raw:
                self.handler.in_network_item(raw)
        else:
            self.handler.skipped_item()
        self.pos = end

    # values

    def _value_end(
        self,
        key: bytes | None = None,
        partial: _jsonscan.Partial | None = None,
        skim: int = 0,
    ) -> int:
        """Validate the value at pos; return where it ends (pos unchanged).

        `key`: the member whose value's span is wanted (`_span`). `partial`: where a scan of
        this value stopped for want of data: it goes on there. `skim`: the depth from which
        containers are only skimmed (0: none).

        An in_network item (`key` is billing_code) longer than `hold` whose own code is known
        and not wanted is passed over as it streams: what has been validated is dropped from
        the buffer, so such an item costs no more memory than `hold` and a chunk.
        """
        self._passed = False
        started = self.base + self.pos
        while True:
            eof = self.eof
            try:
                result = _jsonscan.scan_value(self.buf, self.pos, eof, key, partial, skim)
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
        self._flags = flags
        if self._passed and self._span is not None:
            self._check_passed(started)
        if flags & _jsonscan.LONE_SURROGATE:
            _repair_lone_surrogates(self.buf, self.pos, end)
        return end

    def _rescan(self, end: int) -> None:
        """Validate in full the item at buf[pos:end], whose containers were only skimmed."""
        try:
            result = _jsonscan.scan_value(self.buf, self.pos, True, None)
        except _jsonscan.ScanError as exc:
            offset, reason = exc.args
            raise self._invalid(offset, reason) from None
        assert isinstance(result, tuple) and result[0] == end
        if result[2] & _jsonscan.LONE_SURROGATE:
            _repair_lone_surrogates(self.buf, self.pos, end)

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
