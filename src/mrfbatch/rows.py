"""What a row is: in_network items and provider groups turned into table rows.

This module knows the CMS in-network-rates schema (v1.0 to v2.x) and nothing about parsing:
any engine that decodes an object into dicts, lists, strings, ints and Decimals (or floats)
can hand it here. Keys are looked up by name, so their order in the file never matters.

An item given as JSON text is first decoded (`decode_item`) into typed structs of the schema's
usual shape, which is several times faster than dicts, and read by `ItemRows.typed_batches`;
an item of any other shape (an unknown key, a number where text belongs, ...) goes the general
way, `ItemRows.columns`, where each oddity is counted. Both ways give the same rows.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

# The compute core, without pyarrow.compute: that module builds a wrapper for each of its
# hundreds of functions when imported, 40 ms of every extraction for the two used here.
from pyarrow._compute import call_function

try:
    from mrfbatch import _jsonscan
except ImportError:  # not built: large items are decoded whole
    _jsonscan = None  # type: ignore[assignment]
try:
    from mrfbatch import _rows
except ImportError:  # not built: every item is decoded in Python
    _rows = None  # type: ignore[assignment]

# Keys each object of the schema defines (schema 1.0 to 2.x). Anything else is counted.
ITEM_KEYS = frozenset(
    {
        "negotiation_arrangement",
        "name",
        "billing_code_type",
        "billing_code_type_version",
        "billing_code",
        "description",
        "negotiated_rates",
        "bundled_codes",
        "covered_services",
        "severity_of_illness",
    }
)
RATE_KEYS = frozenset({"negotiated_prices", "provider_groups", "provider_references"})
PRICE_KEYS = frozenset(
    {
        "negotiated_type",
        "negotiated_rate",
        "expiration_date",
        "service_code",
        "billing_class",
        "billing_code_modifier",
        "additional_information",
        "setting",
    }
)
REFERENCE_KEYS = frozenset({"provider_group_id", "provider_groups", "location", "network_name"})
GROUP_KEYS = frozenset({"npi", "tin"})
TIN_KEYS = frozenset({"type", "value", "business_name"})
CODE_KEYS = frozenset(
    {"billing_code_type", "billing_code_type_version", "billing_code", "description"}
)

FILE_METADATA_KEYS = (
    "reporting_entity_name",
    "reporting_entity_type",
    "plan_name",
    "plan_id_type",
    "plan_id",
    "plan_market_type",
    "plan_sponsor_name",
    "issuer_name",
    "last_updated_on",
    "version",
)
TOP_KEYS = frozenset({*FILE_METADATA_KEYS, "provider_references", "in_network"})

RATE_COLUMNS = (
    "network_id",
    "billing_code_type",
    "billing_code_type_version",
    "billing_code",
    "negotiation_arrangement",
    "name",
    "description",
    "negotiated_type",
    "negotiated_rate",
    "expiration_date",
    "billing_class",
    "setting",
    "service_code",
    "billing_code_modifier",
    "additional_information",
    "severity_of_illness",
    "bundled_codes",
    "covered_services",
    "provider_group_ids",
)
PROVIDER_COLUMNS = (
    "network_id",
    "provider_group_id",
    "npi",
    "tin_type",
    "tin_value",
    "business_name",
    "network_name",
    "source",
)

_LIST = pa.list_(pa.string())
_RATE_LISTS = frozenset(
    {
        "service_code",
        "billing_code_modifier",
        "bundled_codes",
        "covered_services",
        "provider_group_ids",
    }
)
RATES_SCHEMA = pa.schema(
    [
        (c, pa.float64() if c == "negotiated_rate" else _LIST if c in _RATE_LISTS else pa.string())
        for c in RATE_COLUMNS
    ]
)
PROVIDERS_SCHEMA = pa.schema(
    [
        (c, pa.int64() if c == "npi" else _LIST if c == "network_name" else pa.string())
        for c in PROVIDER_COLUMNS
    ]
)

Columns = dict[str, list[Any]]
# One provider group as stored and hashed: (npis, tin_type, tin_value, business_name).
Group = tuple[tuple[int, ...], str | None, str | None, str | None]

_MAX_NAMES = 50
ROWS_PER_BATCH = 8192  # rate rows of a large item handed to the writer at a time


@dataclass
class Quality:
    """Counts of what the schema did not expect, kept per extraction."""

    unknown_keys: int = 0
    unknown_key_names: Counter[str] = field(default_factory=Counter)
    invalid_values: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    def check_keys(self, obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
        for key in obj:
            if key not in known:
                self.unknown_keys += 1
                if len(self.unknown_key_names) < _MAX_NAMES or key in self.unknown_key_names:
                    self.unknown_key_names[f"{where}.{key}"] += 1

    def invalid(self, what: str) -> None:
        self.invalid_values += 1
        if len(self.invalid_examples) < 20:
            self.invalid_examples.append(what)


def group_key(value: object) -> str:
    """The join key of a `provider_group_id` or `provider_references` entry: its exact text.

    >>> group_key(Decimal("690.64470")), group_key(12), group_key("a7")
    ('690.64470', '12', 'a7')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"provider group id {value!r} is not a number or a string")
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise ValueError(f"provider group id {value!r} is not a number or a string")


def text(value: object, quality: Quality, what: str) -> str | None:
    """A scalar as text; numbers keep their published digits. Objects are invalid (null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    quality.invalid(f"{what}: expected text, found {type(value).__name__}")
    return None


def text_list(value: object, quality: Quality, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        value = [value]
    elif all(type(v) is str for v in value):
        return value  # the usual case; decoded lists are not shared, so no copy is needed
    return [t for t in (text(v, quality, what) for v in value) if t is not None]


def number(value: object, quality: Quality, what: str) -> float | None:
    if type(value) in _NUMBERS:
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, bool):
        quality.invalid(f"{what}: expected a number, found {value!r}")
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(parsed):
                return parsed
    if value is not None:
        quality.invalid(f"{what}: expected a number, found {value!r:.40}")
    return None


def _codes(value: object, quality: Quality, what: str) -> list[str] | None:
    if not isinstance(value, list):
        return None if value is None else []
    out = []
    for entry in value:
        if not isinstance(entry, Mapping):
            quality.invalid(f"{what}: expected an object, found {type(entry).__name__}")
            continue
        quality.check_keys(entry, CODE_KEYS, what)
        kind = text(entry.get("billing_code_type"), quality, what)
        code = text(entry.get("billing_code"), quality, what)
        out.append(_code_pair(kind, code))
    return out


def _code_pair(kind: str | None, code: str | None) -> str:
    """A bundled or covered code as the `bundled_codes`/`covered_services` columns list it."""
    return f"{kind or ''}:{code or ''}"


def _objects(value: object, quality: Quality, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        quality.invalid(f"{what}: expected an array, found {type(value).__name__}")
        return []
    if all(type(v) is dict for v in value):
        return value  # the usual case, without the slower ABC check per entry
    good = [v for v in value if isinstance(v, Mapping)]
    if len(good) != len(value):
        quality.invalid(f"{what}: {len(value) - len(good)} entries are not objects")
    return good


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
_NUMBERS = (Decimal, int, float)
_ID_TYPES = frozenset({int, Decimal, str})  # provider ids whose key is str(id)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def owner_indices(sizes: Sequence[int]) -> pa.Array:
    """The index of each row's owner, where owner i has sizes[i] rows, in order.

    >>> owner_indices([2, 0, 1]).to_pylist()
    [0, 0, 2]
    """
    ends = list(accumulate(sizes, initial=0))
    owners = pa.LargeListArray.from_arrays(pa.array(ends, pa.int64()), pa.nulls(ends[-1]))
    return call_function("list_parent_indices", [owners])


def repeat(value: object, kind: pa.DataType, n: int) -> pa.Array:
    """An array of `kind` holding `value` n times."""
    if n == 0:
        return pa.array([], kind)  # (pa.repeat of a list, 0 times, fails)
    return pa.repeat(pa.scalar(value, kind), n)


def take(values: pa.Array, indices: pa.Array) -> pa.Array:
    """values[i] for each i in indices (Arrow copies them in C).

    >>> take(pa.array(["a", "b"]), pa.array([1, 1, 0])).to_pylist()
    ['b', 'b', 'a']
    """
    return call_function("take", [values, indices])


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
            _codes(get("bundled_codes"), q, "bundled_codes"),
            _codes(get("covered_services"), q, "covered_services"),
        )
        prices: list[Mapping[str, Any]] = []
        group_ids: list[list[str]] = []
        for rate in _objects(get("negotiated_rates"), q, "negotiated_rates"):
            q.check_keys(rate, RATE_KEYS, "negotiated_rates")
            # The ids are shared by the rate's rows, and never changed afterwards.
            ids = self._group_ids(
                rate.get("provider_references"), rate.get("provider_groups", msgspec.UNSET)
            )
            rate_prices = _objects(rate.get("negotiated_prices"), q, "negotiated_prices")
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
            return pa.Array.from_buffers(_LIST, count, [valid, b[at - 1]], children=[child])

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
            else [_code_pair(c.billing_code_type, c.billing_code) for c in codes]
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
            [self._group_ids(r.provider_references, r.provider_groups) for r in rates], _LIST
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


def parse_groups(value: object, quality: Quality) -> list[Group]:
    """Normalize a `provider_groups` array into (npis, tin_type, tin_value, business_name)."""
    groups: list[Group] = []
    for g in _objects(value, quality, "provider_groups"):
        usual = _usual_group(g)
        if usual is not None:
            groups.append(usual)
            continue
        quality.check_keys(g, GROUP_KEYS, "provider_groups")
        tin = g.get("tin")
        if not isinstance(tin, Mapping):
            quality.invalid(f"provider_groups.tin: expected an object, found {tin!r:.40}")
            tin = {}
        quality.check_keys(tin, TIN_KEYS, "tin")
        npis = _npis(g.get("npi"), quality)
        groups.append(
            (
                npis,
                text(tin.get("type"), quality, "tin.type"),
                text(tin.get("value"), quality, "tin.value"),
                text(tin.get("business_name"), quality, "tin.business_name"),
            )
        )
    return groups


def _usual_group(g: Mapping[str, Any]) -> Group | None:
    """The group when it has the usual shape (nothing to count or convert), else None."""
    tin, npi = g.get("tin"), g.get("npi")
    if not (type(tin) is dict and type(npi) is list and npi and GROUP_KEYS.issuperset(g)):
        return None
    kind, value, name = tin.get("type"), tin.get("value"), tin.get("business_name")
    if (
        TIN_KEYS.issuperset(tin)
        and all(type(v) is int for v in npi)
        and min(npi) >= _INT64_MIN
        and max(npi) <= _INT64_MAX
        and all(v is None or type(v) is str for v in (kind, value, name))
    ):
        return tuple(npi), kind, value, name
    return None


def _npis(value: object, quality: Quality) -> tuple[int, ...]:
    if value is None or value == []:
        return (0,)
    if (
        isinstance(value, list)
        and all(type(v) is int for v in value)
        and min(value) >= _INT64_MIN
        and max(value) <= _INT64_MAX
    ):
        return tuple(value)  # the usual case: a list of JSON integers
    out = []
    for v in value if isinstance(value, list) else [value]:
        try:
            if isinstance(v, bool):
                raise ValueError
            n = int(v.strip()) if isinstance(v, str) else int(v)  # type: ignore[arg-type]
            if isinstance(v, Decimal | float) and n != v:
                raise ValueError
            if not _INT64_MIN <= n <= _INT64_MAX:
                raise ValueError
        except (TypeError, ValueError):
            quality.invalid(f"npi: expected a 10-digit number, found {v!r:.40}")
            continue
        out.append(n)
    return tuple(out) or (0,)


def inline_key(groups: list[Group]) -> str:
    """The generated key of an inline `provider_groups` list: equal content, equal key."""
    canonical = json.dumps(groups, separators=(",", ":"), ensure_ascii=False)
    return "inline-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
