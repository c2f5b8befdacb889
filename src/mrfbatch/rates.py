"""Rate rows of in_network items: an item's JSON text or decoded object, as record batches.

An item given as JSON text is first read in C (`mrfbatch._rows`, when built) or decoded
(`decode_item`) into typed structs of the schema's usual shape, which is several times faster
than dicts, and read by `ItemRows.typed_batches`; an item of any other shape (an unknown key, a
number where text belongs, ...) goes the general way, `ItemRows.columns`, where each oddity is
counted. All ways give the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

from mrfbatch.tables import (
    ITEM_KEYS,
    PRICE_KEYS,
    RATE_COLUMNS,
    RATE_KEYS,
    RATES_SCHEMA,
    TEXT_LIST,
    Columns,
    Group,
    Quality,
    code_list,
    code_pair,
    group_key,
    inline_key,
    number,
    objects,
    owner_indices,
    parse_groups,
    repeat,
    take,
    text,
    text_list,
)

try:
    from mrfbatch import _jsonscan
except ImportError:  # not built: large items are decoded whole
    _jsonscan = None  # type: ignore[assignment]
try:
    from mrfbatch import _rows
except ImportError:  # not built: every item is decoded in Python
    _rows = None  # type: ignore[assignment]

_PRICE_FIELDS: tuple[tuple[str, Any], ...] = (
    ("negotiated_type", text),
    ("negotiated_rate", number),
    ("expiration_date", text),
    ("billing_class", text),
    ("setting", text),
    ("service_code", text_list),
    ("billing_code_modifier", text_list),
    ("additional_information", text),
)
# The item-level columns, in RATE_COLUMNS order (`ItemRows.columns` lists their values so).
_ITEM_FIELDS = tuple(
    c for c in RATE_COLUMNS if c not in dict(_PRICE_FIELDS) and c != "provider_group_ids"
)
_PRICE_VALUES = tuple((name, attrgetter(name)) for name, _ in _PRICE_FIELDS)
_RATE_REFERENCES = attrgetter("provider_references")
_RATE_GROUPS = attrgetter("provider_groups")
_ID_TYPES = frozenset({int, Decimal, str})  # provider ids whose key is str(id)

ROWS_PER_BATCH = 8192  # rate rows of a large item handed to the writer at a time


def _all_str(value: object) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


class _Code(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    billing_code_type: str | None = None
    billing_code_type_version: str | None = None
    billing_code: str | None = None
    description: str | None = None


class _Price(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    negotiated_type: str | None = None
    negotiated_rate: float | None = None
    expiration_date: str | None = None
    billing_class: str | None = None
    setting: str | None = None
    service_code: list[str] | None = None
    billing_code_modifier: list[str] | None = None
    additional_information: str | None = None


class _Rate(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    negotiated_prices: list[_Price] | None = None
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
    bundled_codes: list[_Code] | None = None
    covered_services: list[_Code] | None = None
    severity_of_illness: str | None = None


class TypedItem(_ItemFields, forbid_unknown_fields=True, gc=False):
    negotiated_rates: list[_Rate] | None = None


class _ItemHead(_ItemFields, forbid_unknown_fields=True, gc=False):
    """A TypedItem whose negotiated_rates are left as JSON text (see `LargeItem`)."""

    negotiated_rates: msgspec.Raw = msgspec.Raw(b"null")  # (msgspec takes no Raw | None)


_TYPED_ITEM = msgspec.json.Decoder(TypedItem, float_hook=Decimal)
_ITEM_HEAD = msgspec.json.Decoder(_ItemHead, float_hook=Decimal)
_RATE = msgspec.json.Decoder(_Rate, float_hook=Decimal)
_ANY_ITEM = msgspec.json.Decoder(float_hook=Decimal)
# Items longer than this are decoded a few rates at a time (`LargeItem`): decoded whole, an
# item takes about four times its length in Python objects. Each rate is then decoded twice
# (its shape is checked before any row is made), which costs about 15 % more time on such items.
LARGE_ITEM_BYTES = 64 << 20


class LargeItem:
    """A large item of the usual shape: its head decoded, its rates decoded as they are read.

    `decode_item` has checked that every rate has the usual shape, so reading them cannot fail.
    """

    def __init__(self, head: _ItemHead, rates: bytes, spans: list[tuple[int, int]]):
        self.head = head
        self.billing_code = head.billing_code
        self._rates = rates
        self._spans = spans

    def rates(self) -> Iterator[_Rate]:
        with memoryview(self._rates) as view:
            for start, end in self._spans:
                yield _RATE.decode(view[start:end])


def decode_item(raw: bytes | memoryview) -> object:
    """An item's JSON text as a TypedItem (or a LargeItem when it is long) when it has the
    usual shape, else as dicts and lists (fractions as Decimal) for `ItemRows.columns`. Text
    that is not JSON raises DecodeError."""
    try:
        if len(raw) > LARGE_ITEM_BYTES and _jsonscan is not None:
            return _large_item(raw)
        return _TYPED_ITEM.decode(raw)
    except msgspec.ValidationError:
        return _ANY_ITEM.decode(raw)


def _large_item(raw: bytes | memoryview) -> LargeItem | TypedItem:
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
        assert _jsonscan is not None
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


class ItemRows:
    """Turns matched in_network items into rate rows, collecting the groups they reference.

    `referenced` gathers the provider_group_id keys rate rows point to; `inline` the groups
    given inside negotiated rates, by their generated key.
    """

    def __init__(self, network_id: str, quality: Quality):
        self.network_id = network_id
        self.quality = quality
        self.referenced: set[str] = set()
        self.new_inline: dict[str, list[Group]] = {}
        self._inline_seen: set[str] = set()
        self._native = None if _rows is None else _rows.RateRows()

    def columns(self, item: Mapping[str, Any]) -> tuple[Columns, int]:
        """The rate rows of one matched item, as columns (RATE_COLUMNS) and their count."""
        q = self.quality
        get = item.get
        q.check_keys(item, ITEM_KEYS, "in_network")
        item_values = (
            self.network_id,
            text(get("billing_code_type"), q, "billing_code_type"),
            text(get("billing_code_type_version"), q, "billing_code_type_version"),
            text(get("billing_code"), q, "billing_code"),
            text(get("negotiation_arrangement"), q, "negotiation_arrangement"),
            text(get("name"), q, "name"),
            text(get("description"), q, "description"),
            text(get("severity_of_illness"), q, "severity_of_illness"),
            code_list(get("bundled_codes"), q, "bundled_codes"),
            code_list(get("covered_services"), q, "covered_services"),
        )
        prices: list[Mapping[str, Any]] = []
        group_ids: list[list[str]] = []
        for rate in objects(get("negotiated_rates"), q, "negotiated_rates"):
            q.check_keys(rate, RATE_KEYS, "negotiated_rates")
            # The ids are shared by the rate's rows, and never changed afterwards.
            ids = self._group_ids(
                rate.get("provider_references"), rate.get("provider_groups", msgspec.UNSET)
            )
            rate_prices = objects(rate.get("negotiated_prices"), q, "negotiated_prices")
            prices.extend(rate_prices)
            group_ids.extend([ids] * len(rate_prices))
        if not all(PRICE_KEYS.issuperset(price) for price in prices):
            for price in prices:
                q.check_keys(price, PRICE_KEYS, "negotiated_prices")
        # Column by column: one comprehension per field, and a conversion call only for
        # values that are not already of the usual type.
        price_columns: Columns = {}
        for name, convert in _PRICE_FIELDS:
            values = [price.get(name) for price in prices]
            if convert is number:
                values = [v if type(v) is float else number(v, q, name) for v in values]
            elif convert is text_list:
                usual = all(v is None or type(v) is list for v in values) and all(
                    type(x) is str for v in values if v is not None for x in v
                )
                if not usual:
                    values = [
                        v if v is None or _all_str(v) else text_list(v, q, name) for v in values
                    ]
            elif not all(v is None or type(v) is str for v in values):
                values = [convert(v, q, name) for v in values]
            price_columns[name] = values
        n = len(group_ids)
        columns: Columns = {
            name: [value] * n for name, value in zip(_ITEM_FIELDS, item_values, strict=True)
        }
        columns.update(price_columns)
        columns["provider_group_ids"] = group_ids
        return columns, n

    def native_head(self, raw: bytes | memoryview) -> _rows.ItemHead | None:
        """An item's own values when the C extension reads it (the usual shape, every rate
        checked), else None: the item is then decoded in Python (`decode_item`)."""
        if self._native is None:
            return None
        return self._native.item_head(raw)

    def native_batches(
        self, head: _rows.ItemHead, raw: bytes | memoryview
    ) -> Iterator[pa.RecordBatch]:
        """The rows of an item `native_head` read, made in C, about ROWS_PER_BATCH at a time:
        the same batches as `typed_batches` gives for it."""
        assert self._native is not None
        arrangement, name, kind, version, description, severity, code, bundled, covered = head[:9]
        item_values = (
            self.network_id,
            kind,
            version,
            str(code) if type(code) is int else code,
            arrangement,
            name,
            description,
            severity,
            bundled,
            covered,
        )
        at, ended = head[9], head[9] < 0
        while not ended:
            at, ended = self._native.add_rates(raw, at, ROWS_PER_BATCH, self.referenced)
            batch = self._native_batch(item_values)
            if batch is not None:
                yield batch

    def _native_batch(self, item_values: tuple[object, ...]) -> pa.RecordBatch | None:
        """The rows gathered in C, as a record batch; None when no rate was read."""
        assert self._native is not None
        (n, rates, services, modifiers, ids), data = self._native.take()
        if not rates:
            return None
        b = list(map(pa.py_buffer, data))
        texts = [pa.Array.from_buffers(pa.string(), n, b[i : i + 3]) for i in range(0, 15, 3)]

        def lists(at: int, items: int, valid: pa.Buffer | None, count: int) -> pa.Array:
            child = pa.Array.from_buffers(pa.string(), items, [None, b[at], b[at + 1]])
            return pa.Array.from_buffers(TEXT_LIST, count, [valid, b[at - 1]], children=[child])

        return _rate_batch(
            item_values,
            n,
            negotiated_type=texts[0],
            negotiated_rate=pa.Array.from_buffers(pa.float64(), n, [b[15], b[16]]),
            expiration_date=texts[1],
            billing_class=texts[2],
            setting=texts[3],
            service_code=lists(19, services, b[17], n),
            billing_code_modifier=lists(23, modifiers, b[21], n),
            additional_information=texts[4],
            provider_group_ids=take(
                lists(27, ids, None, rates), pa.Array.from_buffers(pa.int32(), n, [None, b[25]])
            ),
        )

    def typed_batches(self, item: TypedItem | LargeItem) -> Iterator[pa.RecordBatch]:
        """`typed_batch` a few rates at a time, about ROWS_PER_BATCH rows per batch: the rows
        of a large item are never all held as Python objects at once."""
        head: TypedItem | _ItemHead
        if isinstance(item, LargeItem):
            head, rates = item.head, item.rates()
        else:
            head, rates = item, iter(item.negotiated_rates or ())
        batch: list[_Rate] = []
        count = 0
        for rate in rates:
            batch.append(rate)
            count += len(rate.negotiated_prices or ())
            if count >= ROWS_PER_BATCH:
                yield self.typed_batch(head, batch)
                batch, count = [], 0
        if batch:
            yield self.typed_batch(head, batch)

    def typed_batch(self, item: TypedItem | _ItemHead, rates: Sequence[_Rate]) -> pa.RecordBatch:
        """The rows of some `rates` of an item of the usual shape (see `decode_item`), as a
        record batch of RATES_SCHEMA: the same rows as `columns` gives for them.

        Arrow repeats what rows share: the item's values, and each rate's ids for its prices.
        """
        prices: list[_Price] = []
        sizes: list[int] = []  # prices per rate
        for rate in rates:
            rate_prices = rate.negotiated_prices or ()
            prices += rate_prices
            sizes.append(len(rate_prices))
        n = len(prices)
        codes = (
            None
            if codes is None
            else [code_pair(c.billing_code_type, c.billing_code) for c in codes]
            for codes in (item.bundled_codes, item.covered_services)
        )
        item_values = (
            self.network_id,
            item.billing_code_type,
            item.billing_code_type_version,
            str(item.billing_code) if type(item.billing_code) is int else item.billing_code,
            item.negotiation_arrangement,
            item.name,
            item.description,
            item.severity_of_illness,
            *codes,
        )
        arrays = {  # attributes read in C
            name: pa.array(list(map(value, prices)), RATES_SCHEMA.field(name).type)
            for name, value in _PRICE_VALUES
        }
        ids = self._rate_ids(rates)
        if sizes.count(1) != len(sizes):  # not one price per rate
            ids = take(ids, owner_indices(sizes))
        return _rate_batch(item_values, n, provider_group_ids=ids, **arrays)

    def _rate_ids(self, rates: Sequence[_Rate]) -> pa.Array:
        """`_group_ids` of each rate, as a list array: of rates whose provider_references are
        all lists of numbers or strings, and none with provider_groups, in a few calls."""
        refs = list(map(_RATE_REFERENCES, rates))
        types = set(map(type, refs))
        if types <= {list, type(None)} and list(map(_RATE_GROUPS, rates)).count(
            msgspec.UNSET
        ) == len(rates):
            if type(None) in types:
                refs = [[] if r is None else r for r in refs]
            ids = list(chain.from_iterable(refs))
            if _ID_TYPES.issuperset(map(type, ids)):
                keys = list(map(str, ids))  # group_key of these types, with no call per id
                self.referenced.update(keys)
                ends = pa.array(accumulate(map(len, refs), initial=0), pa.int32())
                return pa.ListArray.from_arrays(ends, pa.array(keys, pa.string()))
        return pa.array(
            [self._group_ids(r.provider_references, r.provider_groups) for r in rates], TEXT_LIST
        )

    def _inline(self, value: object) -> str:
        """The key of an inline `provider_groups` list, kept for the provider table."""
        groups = parse_groups(value, self.quality)
        key = inline_key(groups)
        if key not in self._inline_seen:
            self._inline_seen.add(key)
            self.new_inline[key] = groups
        return key

    def _group_ids(self, refs: object, groups: object) -> list[str]:
        """The keys of a rate's `provider_references` and its inline `provider_groups`
        (UNSET: the rate has no such key)."""
        ids: list[str] = []
        if isinstance(refs, list) and _ID_TYPES.issuperset(map(type, refs)):
            ids = list(map(str, refs))  # group_key of these types, with no call per id
            self.referenced.update(ids)
            refs = None
        for ref in refs if isinstance(refs, list) else ([] if refs is None else [refs]):
            try:
                key = group_key(ref)
            except ValueError as exc:
                self.quality.invalid(f"provider_references: {exc}")
                continue
            ids.append(key)
            self.referenced.add(key)
        if groups is not msgspec.UNSET:
            ids.append(self._inline(groups))
        return ids

    def take_inline(self) -> dict[str, list[Group]]:
        """Inline groups first seen since the last call."""
        new, self.new_inline = self.new_inline, {}
        return new


def _rate_batch(item_values: Sequence[object], n: int, **rows: pa.Array) -> pa.RecordBatch:
    """A record batch of RATES_SCHEMA: the item's values (in _ITEM_FIELDS order) repeated for
    each of its n rows, and the rows' own columns."""
    arrays = {
        name: repeat(value, RATES_SCHEMA.field(name).type, n)
        for name, value in zip(_ITEM_FIELDS, item_values, strict=True)
    }
    arrays.update(rows)
    return pa.RecordBatch.from_arrays([arrays[c] for c in RATE_COLUMNS], schema=RATES_SCHEMA)
