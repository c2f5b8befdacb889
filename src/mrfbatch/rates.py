"""Rate rows of in_network items: `ItemRows.read` takes an item as JSON text or decoded.

An item given as JSON text is read in C (`mrfbatch._rows`) when it has the schema's usual
shape; else it is decoded in Python (`mrfbatch.items`): into typed structs when it fits them
(inline provider_groups, say), read by `ItemRows.typed_batches`, or into dicts, read by
`ItemRows.columns`, which counts each oddity (an unknown key, a number where text belongs). A
decoded item (the reference engine's) goes the way of dicts. All ways give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any, Protocol

import msgspec
import pyarrow as pa

from mrfbatch import _rows
from mrfbatch.engines import Element
from mrfbatch.items import LargeItem, TypedHead, TypedItem, TypedPrice, TypedRate, decode_item
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
from mrfbatch.writers import TableWriter

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
# The item's own texts, which the C side writes into each of its rows.
_ITEM_TEXTS = _ITEM_FIELDS[1:8]
_PRICE_VALUES = tuple((name, attrgetter(name)) for name, _ in _PRICE_FIELDS)
_RATE_REFERENCES = attrgetter("provider_references")
_RATE_GROUPS = attrgetter("provider_groups")
_ID_TYPES = frozenset({int, Decimal, str})  # provider ids whose key is str(id)

ROWS_PER_BATCH = 8192  # rate rows handed to the writer at a time (of one item or of several)


def _all_str(value: object) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


class Item(Protocol):
    """An in_network item as `ItemRows.read` found it: its own billing code, and its rows."""

    billing_code: object

    def write(self, rates: TableWriter) -> None:
        """Make the item's rows and write them: the groups they reference are noted. Rows
        read in C may wait, gathered, for a later item's write or `ItemRows.write_gathered`."""


class ItemRows:
    """Turns matched in_network items into rate rows, collecting the groups they reference.

    `referenced` gathers the provider_group_id keys rate rows point to. `add_inline` is called
    with each group list given inside a negotiated rate the first time it is met, under its
    generated key (as rows are made, so that a long item's lists are not all held at once).
    """

    def __init__(
        self,
        network_id: str,
        quality: Quality,
        add_inline: Callable[[str, list[Group]], None],
    ):
        self.network_id = network_id
        self.quality = quality
        self.referenced: set[str] = set()
        self._add_inline = add_inline
        self._inline_seen: set[str] = set()
        self._native = _rows.RateRows()
        # Of the rows gathered in C and not yet taken, those whose item has bundled_codes or
        # covered_services (rare): (first row, end row, bundled, covered). The item's other
        # values are in the rows themselves: small items share a batch, and no Python object
        # is made per item.
        self._codes: list[tuple[int, int, object, object]] = []

    def read(self, item: object) -> Item | None:
        """An in_network item, as JSON text (bytes, or a memoryview used only during this call
        and the item's `write`) or decoded; None when it is not an object.

        Text of the usual shape is read in C; other text is decoded in Python (`decode_item`).
        """
        if isinstance(item, bytes | bytearray | memoryview):
            head = self.native_head(item)
            if head is not None:
                return _NativeItem(self, head, item)
            item = decode_item(item)
            if isinstance(item, TypedItem | LargeItem):
                return _TypedItem(self, item)
        if not isinstance(item, Mapping):
            return None
        return _DecodedItem(self, item)

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

    def native_head(self, raw: bytes | bytearray | memoryview) -> _rows.ItemHead | None:
        """An item's own values when the C extension reads it (the usual shape, every rate
        checked), else None: the item is then decoded in Python (`decode_item`)."""
        return self._native.item_head(raw)

    def native_batches(
        self, head: _rows.ItemHead, raw: bytes | bytearray | memoryview
    ) -> Iterator[pa.RecordBatch]:
        """The rows of an item `native_head` read, made in C, about ROWS_PER_BATCH at a time:
        the same batches as `typed_batches` gives for it (when no rows were gathered before)."""
        yield from self.gather(head, raw)
        batch = self.take_gathered()
        if batch is not None:
            yield batch

    def gather(
        self, head: _rows.ItemHead, raw: bytes | bytearray | memoryview
    ) -> Iterator[pa.RecordBatch]:
        """Gather the rows of an item `native_head` read, after those gathered before: a batch
        whenever about ROWS_PER_BATCH rows are gathered. The rest waits for the next item or
        `take_gathered`; `raw` is not used after this."""
        yield from self._gather_rates(*_head_values(head), raw, head[9])

    def _gather_rates(
        self,
        texts: tuple[str | None, ...],
        codes: tuple[object, object],
        raw: bytes | bytearray | memoryview,
        at: int,
    ) -> Iterator[pa.RecordBatch]:
        """`gather` of the item's rates from raw[at] (-1: none): `texts`, the item's own texts
        in RATE_COLUMNS order; `codes`, its bundled_codes and covered_services."""
        ended = at < 0
        while not ended:
            first = self._native.count
            at, ended = self._native.add_rates(raw, at, ROWS_PER_BATCH, self.referenced, texts)
            if codes != (None, None) and self._native.count > first:
                self._codes.append((first, self._native.count, *codes))
            if self._native.count >= ROWS_PER_BATCH:
                batch = self.take_gathered()
                if batch is not None:
                    yield batch

    def write_usual(
        self, text: bytes | bytearray, found: list[Element], at: int, rates: TableWriter
    ) -> int:
        """Write the rows of the items text[start:end] of found[at:] (`Element`s), read in C
        in one call per batch, up to the first one that is not of the usual shape: where
        that one is in `found` (len(found) when there is none). Its rows and those of items
        before: the same as `read` and `write` of each item give."""
        while True:
            at, resume, head = self._native.add_items(
                text, found, at, ROWS_PER_BATCH, self.referenced, self._codes
            )
            if self._native.count >= ROWS_PER_BATCH:
                self.write_gathered(rates)
                if head is not None:  # the batch filled inside item `at`: its rates go on
                    for batch in self._gather_rates(*_head_values(head), text, resume):
                        rates.write_batch(batch)
                    at += 1
            elif at < len(found):  # item `at` is not of the usual shape
                return at
            if at == len(found):
                return at

    def write_gathered(self, rates: TableWriter) -> None:
        """Write the rows gathered and not yet written (before other rows, and at the end)."""
        batch = self.take_gathered()
        if batch is not None:
            rates.write_batch(batch)

    def take_gathered(self) -> pa.RecordBatch | None:
        """The rows gathered in C, as a record batch; None when no rate was read."""
        (n, rates, services, modifiers, ids), data = self._native.take()
        codes, self._codes = self._codes, []
        if not rates:
            return None
        b = list(map(pa.py_buffer, data))

        def texts(at: int) -> pa.Array:
            return pa.Array.from_buffers(pa.string(), n, b[at : at + 3])

        def lists(at: int, items: int, valid: pa.Buffer | None, count: int) -> pa.Array:
            child = pa.Array.from_buffers(pa.string(), items, [None, b[at], b[at + 1]])
            return pa.Array.from_buffers(TEXT_LIST, count, [valid, b[at - 1]], children=[child])

        arrays = {name: texts(29 + 3 * i) for i, name in enumerate(_ITEM_TEXTS)}
        arrays["bundled_codes"], arrays["covered_services"] = _code_columns(codes, n)
        arrays.update(
            network_id=repeat(self.network_id, pa.string(), n),
            negotiated_type=texts(0),
            negotiated_rate=pa.Array.from_buffers(pa.float64(), n, [b[15], b[16]]),
            expiration_date=texts(3),
            billing_class=texts(6),
            setting=texts(9),
            service_code=lists(19, services, b[17], n),
            billing_code_modifier=lists(23, modifiers, b[21], n),
            additional_information=texts(12),
            provider_group_ids=take(
                lists(27, ids, None, rates), pa.Array.from_buffers(pa.int32(), n, [None, b[25]])
            ),
        )
        return pa.RecordBatch.from_arrays([arrays[c] for c in RATE_COLUMNS], schema=RATES_SCHEMA)

    def typed_batches(self, item: TypedItem | LargeItem) -> Iterator[pa.RecordBatch]:
        """`typed_batch` a few rates at a time, about ROWS_PER_BATCH rows per batch: the rows
        of a large item are never all held as Python objects at once."""
        head: TypedItem | TypedHead
        if isinstance(item, LargeItem):
            head, rates = item.head, item.rates()
        else:
            head, rates = item, iter(item.negotiated_rates or ())
        batch: list[TypedRate] = []
        count = 0
        for rate in rates:
            batch.append(rate)
            count += len(rate.negotiated_prices or ())
            if count >= ROWS_PER_BATCH:
                yield self.typed_batch(head, batch)
                batch, count = [], 0
        if batch:
            yield self.typed_batch(head, batch)

    def typed_batch(
        self, item: TypedItem | TypedHead, rates: Sequence[TypedRate]
    ) -> pa.RecordBatch:
        """The rows of some `rates` of an item of the usual shape (see `decode_item`), as a
        record batch of RATES_SCHEMA: the same rows as `columns` gives for them.

        Arrow repeats what rows share: the item's values, and each rate's ids for its prices.
        """
        prices: list[TypedPrice] = []
        sizes: list[int] = []  # prices per rate
        for rate in rates:
            rate_prices = rate.negotiated_prices or ()
            prices += rate_prices
            sizes.append(len(rate_prices))
        n = len(prices)
        codes = (
            None
            if codes is None
            else [
                {
                    "billing_code_type": c.billing_code_type,
                    "billing_code_type_version": c.billing_code_type_version,
                    "billing_code": c.billing_code,
                    "description": c.description,
                }
                for c in codes
            ]
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

    def _rate_ids(self, rates: Sequence[TypedRate]) -> pa.Array:
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
            self._add_inline(key, groups)
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


def _head_values(head: _rows.ItemHead) -> tuple[tuple[str | None, ...], tuple[object, object]]:
    """An item head's own texts (`_ITEM_TEXTS`, the code as text) and its code lists."""
    arrangement, name, kind, version, description, severity, code, bundled, covered = head[:9]
    code_text = str(code) if isinstance(code, int) else code
    texts = (kind, version, code_text, arrangement, name, description, severity)
    return texts, (bundled, covered)


def _code_columns(
    codes: list[tuple[int, int, object, object]], n: int
) -> tuple[pa.Array, pa.Array]:
    """bundled_codes and covered_services of n rows gathered in C: from `codes`, the row ranges
    whose item has either list (`ItemRows._codes`); null elsewhere."""
    kind = RATES_SCHEMA.field("bundled_codes").type  # covered_services' too
    if not codes:
        return pa.nulls(n, kind), pa.nulls(n, kind)
    bundled: list[object] = []
    covered: list[object] = []
    sizes: list[int] = []
    row = 0
    for first, end, bundled_codes, covered_services in codes:
        bundled += [None, bundled_codes]
        covered += [None, covered_services]
        sizes += [first - row, end - first]
        row = end
    bundled.append(None)
    covered.append(None)
    sizes.append(n - row)
    owners = owner_indices(sizes)
    return take(pa.array(bundled, kind), owners), take(pa.array(covered, kind), owners)


def _rate_batch(item_values: Sequence[object], n: int, **rows: pa.Array) -> pa.RecordBatch:
    """A record batch of RATES_SCHEMA: the item's values (in _ITEM_FIELDS order) repeated for
    each of its n rows, and the rows' own columns."""
    arrays = {
        name: repeat(value, RATES_SCHEMA.field(name).type, n)
        for name, value in zip(_ITEM_FIELDS, item_values, strict=True)
    }
    arrays.update(rows)
    return pa.RecordBatch.from_arrays([arrays[c] for c in RATE_COLUMNS], schema=RATES_SCHEMA)


class _NativeItem:
    """An item of the usual shape, read in C from its text."""

    def __init__(self, rows: ItemRows, head: _rows.ItemHead, raw: bytes | bytearray | memoryview):
        self.billing_code: object = head[6]
        self._rows, self._head, self._raw = rows, head, raw

    def write(self, rates: TableWriter) -> None:
        for batch in self._rows.gather(self._head, self._raw):
            rates.write_batch(batch)


class _TypedItem:
    """An item decoded into typed structs."""

    def __init__(self, rows: ItemRows, item: TypedItem | LargeItem):
        self.billing_code: object = item.billing_code
        self._rows, self._item = rows, item

    def write(self, rates: TableWriter) -> None:
        self._rows.write_gathered(rates)  # rows stay in the file's order
        for batch in self._rows.typed_batches(self._item):
            rates.write_batch(batch)


class _DecodedItem:
    """An item decoded into dicts and lists."""

    def __init__(self, rows: ItemRows, item: Mapping[str, Any]):
        self.billing_code: object = item.get("billing_code", "")
        self._rows, self._item = rows, item

    def write(self, rates: TableWriter) -> None:
        self._rows.write_gathered(rates)  # rows stay in the file's order
        rates.write_columns(*self._rows.columns(self._item))
