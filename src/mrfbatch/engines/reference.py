"""The reference engine: ijson's C backend (yajl2_c), event by event.

Slow (every token passes through Python) but simple enough to trust; faster engines are
checked against it. Numbers arrive as int or Decimal, so group ids keep their exact digits.
Items (`in_network`, and `out_of_network` of an allowed-amounts file) go to the handler
decoded, one at a time; provider references as JSON text, as the fast engine hands
them over (written back from the decoded entry, Decimals as the same numbers).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import msgspec

from mrfbatch.engines.protocol import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    DocumentHandler,
    Element,
    check_value_size,
    invalid_json,
)
from mrfbatch.engines.yajl import json_error, load_backend
from mrfbatch.errors import FileKindError, JsonFormatError

_BUF_SIZE = 1 << 16
_ENCODE = msgspec.json.Encoder(decimal_format="number")  # a Decimal as the number it was

Event = tuple[str, Any]


class ReferenceEngine:
    """ijson's events, assembled into values. `max_value`: the largest value (bytes) built."""

    name = "reference"

    def __init__(self, max_value: int = DEFAULT_MAX_VALUE_MB * MB) -> None:
        if max_value < 1:
            raise ValueError("max_value must be positive")
        self._backend = load_backend()
        self.max_value = max_value

    def scan(self, stream: BinaryIO, handler: DocumentHandler) -> None:
        import ijson

        checked = _StrictWhitespace(stream, self.max_value)
        events = self._backend.basic_parse(checked, buf_size=_BUF_SIZE, use_float=False)
        try:
            _walk(events, handler, checked)
        except ijson.JSONError as exc:
            raise json_error(exc, stream) from exc
        except UnicodeDecodeError as exc:
            raise _string_error(checked, exc) from exc


class _StrictWhitespace:
    """Rejects form feed and vertical tab, which yajl takes for whitespace but JSON does not.

    Outside strings they are not JSON whitespace (RFC 8259 section 2); inside strings they
    would have to be escaped. So any such raw byte makes the text invalid.

    It also stops a value that grows past `max_value`. The parser reads a piece, hands out every
    event in it, then reads again; so while a value is open (`open_value`, set by the walker at
    its first event), each read means the value has run to the end of the piece before.
    """

    def __init__(self, stream: Any, max_value: int = DEFAULT_MAX_VALUE_MB * MB):
        self._stream = stream
        self.description = getattr(stream, "description", "the file")
        self._offset = 0
        self._last_start = 0  # decoded offset of the piece read last
        self._max_value = max_value
        self._open: tuple[str, int, int] | None = None  # what, where its piece starts and ends
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_pending = False
        self.not_utf8: tuple[int, int, str] | None = None  # the first such byte: offset, value, why
        self._held = b""  # read, from a form feed or vertical tab on: what the next read gives

    def open_value(self, what: str) -> None:
        """A value begins in the piece read last (its first event came from it)."""
        self._open = (what, self._last_start, self._offset)

    def close_value(self) -> None:
        self._open = None

    def read(self, size: int) -> bytes:
        if self._open is not None:
            what, start, start_before = self._open
            # Its first byte is before `start_before` and it has not ended by `_offset`.
            check_value_size(
                self.description,
                what,
                self._offset - start_before,
                self._max_value,
                start,
                start_before,
            )
        data = self._held or self._stream.read(size)
        self._held = b""
        # yajl takes both for whitespace. The parser gets the bytes before the first of them,
        # and the error only if it reads on: a fault before it is the one reported.
        at = min((i for i in (data.find(b"\x0b"), data.find(b"\x0c")) if i >= 0), default=-1)
        if at == 0:
            raise invalid_json(
                self.description,
                self._offset,
                f"control character {data[:1]!r} outside an escape",
            )
        if at > 0:
            data, self._held = data[:at], data[at:]
        if self.not_utf8 is None and (self._utf8_pending or not data.isascii()):
            self._check_utf8(data)
        self._last_start = self._offset
        self._offset += len(data)
        return data

    def _check_utf8(self, data: bytes) -> None:
        """Find the first byte that is not UTF-8 (yajl lets some through, e.g. `\xc0\x80`)."""
        pending = self._utf8.getstate()[0]
        try:
            self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            both = pending + data
            self.not_utf8 = (self._offset - len(pending) + exc.start, both[exc.start], exc.reason)
        else:
            self._utf8_pending = bool(self._utf8.getstate()[0])

    def piece(self) -> tuple[int, int]:
        """Where the piece read last starts and ends."""
        return self._last_start, self._offset


def _string_error(reader: _StrictWhitespace, exc: UnicodeDecodeError) -> JsonFormatError:
    """A string yajl passed on that is not text: bytes that are not UTF-8 (same words as the
    fast engine's), or an escape of a lone low surrogate (`\udc00`), which yajl encodes as such."""
    found = reader.not_utf8
    if found is not None and exc.object[exc.start] == found[1]:
        return invalid_json(reader.description, found[0], f"not UTF-8 ({found[2]})")
    start, end = reader.piece()
    return invalid_json(
        reader.description,
        None,
        f"unpaired low surrogate escape in a string that ends between decoded bytes {start} and "
        f"{end}",
    )


def _walk(events: Iterator[Event], handler: DocumentHandler, reader: _StrictWhitespace) -> None:
    first, _ = next(events)
    if first != "start_map":
        kind = {"start_array": "an array"}.get(first, "a single value")
        raise FileKindError(
            f"the top level of the JSON is {kind}; an in-network file is an object with an "
            "`in_network` array"
        )
    for event, value in events:
        if event == "end_map":
            break
        key: str = value
        wanted = handler.top_level_key(key)
        event, value = next(events)
        if key == "in_network" and event == "start_array":
            for item in _array_items(events, wanted, reader, "an in_network item"):
                handler.in_network_item(item)
        elif key == "out_of_network" and event == "start_array":
            for item in _array_items(events, wanted, reader, "an out_of_network item"):
                handler.out_of_network_item(item)
        elif key == "provider_references" and event == "start_array":
            for entry in _array_items(events, wanted, reader, "a provider_references entry"):
                handler.provider_references(*reference_text(entry))
        else:
            if event in ("start_map", "start_array"):
                value = _container(events, event, wanted, reader, "a value")
            if wanted:
                handler.header(key, value)
    for _ in events:  # let the parser reject trailing garbage
        pass


def reference_text(entry: Any) -> tuple[bytes, list[Element]]:
    """A decoded provider_references entry as the JSON text and Element the fast engine would
    hand over: the entry's text, followed by its provider_group_id's, where the Element's key
    span points. The id, and an entry that is not an object, are written so that they decode
    to the same values again (`json_text`): their keys and the messages that name them are the
    fast engine's."""
    if not isinstance(entry, dict):
        text = json_text(entry)
        return text, [(0, len(text), -1, -1, 0)]
    text = _ENCODE.encode(entry)
    if "provider_group_id" not in entry:
        return text, [(0, len(text), -1, -1, 0)]
    size = len(text)
    text += json_text(entry["provider_group_id"])
    return text, [(0, size, size, len(text), 0)]


def json_text(value: Any) -> bytes:
    """A decoded JSON value (dicts, lists, str, int, Decimal, bool, None) as JSON text that
    decodes to an equal value of the same types: a Decimal is written with its fraction or
    exponent (100 as `100E0`, not `100`, which would decode to an int)."""
    return _ENCODE.encode(_exact(value))


def _exact(value: Any) -> Any:
    if type(value) is Decimal:
        text = str(value)
        return msgspec.Raw((text if any(c in text for c in ".eE") else text + "E0").encode())
    if type(value) is list:
        return [_exact(v) for v in value]
    if type(value) is dict:
        return {k: _exact(v) for k, v in value.items()}
    return value


def _array_items(
    events: Iterator[Event], wanted: bool, reader: _StrictWhitespace, what: str
) -> Iterator[Any]:
    for event, value in events:
        if event == "end_array":
            return
        if event in ("start_map", "start_array"):
            value = _container(events, event, wanted, reader, what)
        if wanted:
            yield value


def _container(
    events: Iterator[Event], first: str, wanted: bool, reader: _StrictWhitespace, what: str
) -> Any:
    """An object or array (its `first` event read): built when wanted, else skipped (None).
    Either way its size is checked: the fast engine would hold it."""
    reader.open_value(what)
    value = None
    if wanted:
        value = _build(events, first)
    else:
        _skip(events, first)
    reader.close_value()
    return value


def _build(events: Iterator[Event], first: str) -> Any:
    """Assemble the container that `first` opened."""
    root: Any = {} if first == "start_map" else []
    stack: list[Any] = [root]
    key: str | None = None
    for event, value in events:
        top = stack[-1]
        if event == "map_key":
            key = value
            continue
        if event in ("end_map", "end_array"):
            stack.pop()
            if not stack:
                return root
            continue
        if event == "start_map":
            value = {}
        elif event == "start_array":
            value = []
        if isinstance(top, list):
            top.append(value)
        else:
            top[key] = value
        if event in ("start_map", "start_array"):
            stack.append(value)
    return root  # unreachable: the parser raises on a premature end


def _skip(events: Iterator[Event], first: str) -> None:
    if first not in ("start_map", "start_array"):
        return
    depth = 1
    for event, _ in events:
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return
