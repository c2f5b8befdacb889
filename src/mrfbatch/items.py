"""An in_network item's JSON text decoded in Python, for the items C does not read.

Into typed structs when the item has the schema's usual shape (several times faster than dicts
to decode and to read), as a whole (`TypedItem`) or, when it is long, a few rates at a time
(`LargeItem`); an item of any other shape (an unknown key, a number where text belongs, ...)
into dicts and lists, whose oddities `mrfbatch.rates` counts. Fractions decode to Decimal.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec

from mrfbatch import _jsonscan


class TypedCode(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    billing_code_type: str | None = None
    billing_code_type_version: str | None = None
    billing_code: str | None = None
    description: str | None = None


class TypedPrice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    negotiated_type: str | None = None
    negotiated_rate: float | None = None
    expiration_date: str | None = None
    billing_class: str | None = None
    setting: str | None = None
    service_code: list[str] | None = None
    billing_code_modifier: list[str] | None = None
    additional_information: str | None = None


class TypedRate(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    negotiated_prices: list[TypedPrice] | None = None
    # Both decoded generically (ids may be fractions, whose exact text is the key; inline
    # groups are rare and irregular) and then read as in `ItemRows.columns`.
    provider_references: Any = None
    provider_groups: Any = msgspec.UNSET


class _ItemFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An item's members of the usual shape, but its negotiated_rates."""

    negotiation_arrangement: str | None = None
    name: str | None = None
    billing_code_type: str | None = None
    billing_code_type_version: str | None = None
    billing_code: str | int | None = None
    description: str | None = None
    bundled_codes: list[TypedCode] | None = None
    covered_services: list[TypedCode] | None = None
    severity_of_illness: str | None = None


class TypedItem(_ItemFields, forbid_unknown_fields=True, gc=False):
    negotiated_rates: list[TypedRate] | None = None


class TypedHead(_ItemFields, forbid_unknown_fields=True, gc=False):
    """A TypedItem whose negotiated_rates are left as JSON text (see `LargeItem`)."""

    negotiated_rates: msgspec.Raw = msgspec.Raw(b"null")  # (msgspec takes no Raw | None)


_TYPED_ITEM = msgspec.json.Decoder(TypedItem, float_hook=Decimal)
_ITEM_HEAD = msgspec.json.Decoder(TypedHead, float_hook=Decimal)
_RATE = msgspec.json.Decoder(TypedRate, float_hook=Decimal)
_ANY_ITEM = msgspec.json.Decoder(float_hook=Decimal)
# Items longer than this are decoded a few rates at a time (`LargeItem`): decoded whole, an
# item takes about four times its length in Python objects. Each rate is then decoded twice
# (its shape is checked before any row is made), which costs about 15 % more time on such items.
LARGE_ITEM_BYTES = 64 << 20


class LargeItem:
    """A large item of the usual shape: its head decoded, its rates decoded as they are read.

    `decode_item` has checked that every rate has the usual shape, so reading them cannot fail.
    """

    def __init__(self, head: TypedHead, rates: bytes, spans: list[tuple[int, int]]):
        self.head = head
        self.billing_code = head.billing_code
        self._rates = rates
        self._spans = spans

    def rates(self) -> Iterator[TypedRate]:
        with memoryview(self._rates) as view:
            for start, end in self._spans:
                yield _RATE.decode(view[start:end])


def decode_item(raw: bytes | bytearray | memoryview) -> object:
    """An item's JSON text as a TypedItem (or a LargeItem when it is long) when it has the
    usual shape, else as dicts and lists (fractions as Decimal) for `ItemRows.columns`. Text
    that is not JSON raises DecodeError."""
    try:
        if len(raw) > LARGE_ITEM_BYTES:
            return _large_item(raw)
        return _TYPED_ITEM.decode(raw)
    except msgspec.ValidationError:
        return _ANY_ITEM.decode(raw)


def _large_item(raw: bytes | bytearray | memoryview) -> LargeItem | TypedItem:
    """A LargeItem; ValidationError where TypedItem would not decode it."""
    head = _ITEM_HEAD.decode(raw)
    rates = bytes(head.negotiated_rates)
    # The text is kept once, in `rates`; and `raw`, which may be a view of the engine's buffer,
    # is no longer referenced once this returns or raises.
    head.negotiated_rates = msgspec.Raw()
    if rates == b"null":
        return _TYPED_ITEM.decode(raw)
    if not rates.startswith(b"["):  # msgspec.Raw starts at the value itself
        raise msgspec.ValidationError("negotiated_rates is not an array")
    spans: list[tuple[int, int]] = []
    if rates.lstrip(b"[ \t\r\n") != b"]":  # not []
        at, state = 1, _jsonscan.AT_ELEMENT
        while state == _jsonscan.AT_ELEMENT:  # valid JSON: each call ends after a `,` or `]`
            at, found, state, _ = _jsonscan.scan_elements(rates, at, True, None)
            if not found:
                break
            spans += [(start, stop) for start, stop, *_ in found]
        if (at, state) != (len(rates), _jsonscan.CLOSED):
            raise RuntimeError(f"negotiated_rates scanned to {at} of {len(rates)} bytes")
    with memoryview(rates) as view:
        for start, stop in spans:  # the shape of each rate, before any row is made
            _RATE.decode(view[start:stop])
    return LargeItem(head, rates, spans)
