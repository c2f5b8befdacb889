"""The C provider-row builder (mrfbatch._rows) against the Python one it replaced.

`ProviderRows.add_text` takes a provider_references entry straight from its JSON text when it
has the usual shape, and gives up (adding nothing) otherwise. Whatever it takes must give
exactly the rows the Python path gives for the same text (`read_reference`, then the rows made
with pyarrow from Python lists: `PythonProviderRows`, the builder the package used before C
was required), and only texts that path decodes without counting anything may be taken.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrfbatch import providers
from mrfbatch.engines.reference import json_text
from mrfbatch.provider_rows import NETWORK_NAMES, ProviderRows, provider_batch, read_reference
from mrfbatch.providers import ProviderStore
from mrfbatch.tables import PROVIDERS_SCHEMA, Group, Quality, owner_indices
from support.budget import max_examples

TIN = '{"type": "ein", "value": "12-3456789", "business_name": "Clinic"}'
USUAL = (
    '{"provider_group_id": 7, "network_name": ["N"], '
    f'"provider_groups": [{{"npi": [1234567890, 1234567891], "tin": {TIN}}}]}}'
)


class PythonProviderRows:
    """Provider rows of many group lists, gathered in Python lists until taken as a batch."""

    def __init__(self, network_id: str):
        self.network_id = network_id
        self.count = 0
        self._groups: list[Group] = []
        self._sizes: list[int] = []  # groups per list
        self._group_ids: list[str] = []
        self._network_names: list[list[str] | None] = []
        self._sources: list[str] = []

    def add(
        self, group_id: str, groups: Sequence[Group], network_name: list[str] | None, source: str
    ) -> None:
        self._groups += groups
        self._sizes.append(len(groups))
        self._group_ids.append(group_id)
        self._network_names.append(network_name)
        self._sources.append(source)
        self.count += sum(len(group[0]) for group in groups)

    def take(self) -> pa.RecordBatch:
        groups, n = self._groups, self.count
        npis, tin_types, tin_values, business_names = (
            zip(*groups, strict=True) if groups else [()] * 4
        )
        return provider_batch(
            self.network_id,
            pa.array(chain.from_iterable(npis), pa.int64(), size=n),
            owner_indices(list(map(len, npis))),
            owner_indices(self._sizes),
            [pa.array(values, pa.string()) for values in (tin_types, tin_values, business_names)],
            [
                pa.array(self._group_ids, pa.string()),
                pa.array(self._network_names, NETWORK_NAMES),
                pa.array(self._sources, pa.string()),
            ],
        )


def python_rows(entries: list[tuple[str, bytes]]) -> tuple[pa.RecordBatch, Quality]:
    """The oracle: each text decoded in Python, as ProviderStore.columns did before C."""
    rows, quality = PythonProviderRows("net"), Quality()
    for gid, text in entries:
        source, names, groups, location = read_reference(text, quality)
        if groups is not None:
            rows.add(gid, groups, names, source)
    return rows.take(), quality


def native_rows(entries: list[tuple[str, bytes]]) -> tuple[pa.RecordBatch, list[bool]]:
    """The C builder, with the Python path for what it gives up on (as `columns` does)."""
    rows, taken = ProviderRows("net"), []
    for gid, text in entries:
        taken.append(rows.add_text(gid, text))
        if not taken[-1]:
            source, names, groups, location = read_reference(text, Quality())
            if groups is not None:
                rows.add(gid, groups, names, source)
    return rows.take(), taken


def assert_same(entries: list[tuple[str, bytes]]) -> list[bool]:
    expected, _ = python_rows(entries)
    got, taken = native_rows(entries)
    assert got.schema == PROVIDERS_SCHEMA
    assert got.to_pylist() == expected.to_pylist()
    assert got.equals(expected)
    return taken


@pytest.mark.parametrize(
    "text",
    [
        USUAL,
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": 7.50'),
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": "a\\"b\\\\"'),
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": {"x": ["]", "}"]}'),
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": [1, [2, {}]]'),
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": true'),
        USUAL.replace('"provider_group_id": 7,', ""),  # the key comes with the entry
        USUAL.replace('["N"]', "null"),
        USUAL.replace('["N"]', "[]"),
        USUAL.replace('["N"]', '["N", "", "Ünïcode ✓"]'),
        USUAL.replace('"network_name": ["N"], ', ""),
        USUAL.replace('"Clinic"', "null"),
        USUAL.replace(TIN, "{}"),
        USUAL.replace(TIN, '{"business_name": "Só", "type": null}'),
        USUAL.replace("[1234567890, 1234567891]", "[]"),  # one row with NPI 0
        USUAL.replace("[1234567890, 1234567891]", "null"),
        USUAL.replace('"npi": [1234567890, 1234567891], ', ""),
        USUAL.replace("1234567890,", "-9223372036854775808, 0, -0,"),
        USUAL.replace("1234567890,", "9223372036854775807,"),
        USUAL.replace('"provider_groups": [', '"provider_groups": [{"tin": {}}, '),
        '{"provider_group_id": 1, "provider_groups": []}',  # defined, no rows
        '{"provider_group_id": 1}',
        '{"provider_group_id": 1, "location": null}',
        '{"location": "https://x/y.json", "provider_groups": [{"tin": {}, "npi": [5]}]}',
        "{}",
        # blanks wherever JSON allows them, CRLF included
        ' {\r\n "provider_groups" :\t[ { "npi" : [ 1 ,\n 2 ] , "tin" : { "type" : "npi" } } ] ,'
        '\r\n "network_name" : [ "A" , "B" ] \n} ',
    ],
)
def test_usual_references_are_taken_in_c_with_the_same_rows(text: str) -> None:
    assert assert_same([("7", text.encode())]) == [True]
    assert python_rows([("7", text.encode())])[1] == Quality()  # nothing counted


@pytest.mark.parametrize(
    "text",
    [
        '{"provider_group_id": 1, "location": "https://x/y.json"}',  # remote groups
        USUAL.replace('"network_name"', '"extra": 1, "network_name"'),
        USUAL.replace('"npi"', '"extra": 1, "npi"'),
        USUAL.replace('"business_name"', '"x": 1, "business_name"'),
        USUAL.replace("1234567890,", '"1234567890",'),
        USUAL.replace("1234567890,", "1234567890.0,"),
        USUAL.replace("1234567890,", "1e9,"),
        USUAL.replace("1234567890,", "9223372036854775808,"),  # over int64
        USUAL.replace("1234567890,", "-9223372036854775809,"),
        USUAL.replace("1234567890,", "null,"),
        USUAL.replace('["N"]', '"N"'),
        USUAL.replace('["N"]', '["N", null]'),
        USUAL.replace('["N"]', '["N", 3]'),
        USUAL.replace('["N"]', '["\\u00dc"]'),  # an escape: decoded in Python
        USUAL.replace('"Clinic"', '"Cl\\"inic"'),
        USUAL.replace('"Clinic"', "3"),
        USUAL.replace('"provider_groups"', '"provider\\u005fgroups"'),  # an escaped key
        USUAL.replace('"npi": [', '"npi": [1], "npi": ['),  # a repeated key
        USUAL.replace('"network_name": ["N"]', '"network_name": ["N"], "network_name": null'),
        USUAL.replace('"type": "ein"', '"type": "ein", "type": "npi"'),
        USUAL.replace(f'"tin": {TIN}', '"tin": null'),
        USUAL.replace(f', "tin": {TIN}', ""),  # no tin: counted as invalid in Python
        USUAL.replace('"provider_groups": [', '"provider_groups": [3, '),
        USUAL.replace('"provider_groups": [{', '"provider_groups": [[], {'),
        '{"provider_group_id": 1, "provider_groups": null}',
        '{"provider_group_id": 1, "provider_groups": {}}',
        '{"provider_group_id": 1, "location": 5}',
    ],
)
def test_other_references_are_left_to_python(text: str) -> None:
    assert assert_same([("7", text.encode())]) == [False]


def test_c_and_python_entries_keep_their_order() -> None:
    """Texts taken in C, texts left to Python and inline groups, interleaved, with nulls at
    every bitmap position (more than 8 groups and lists)."""
    entries = []
    for i in range(40):
        if i % 5 == 3:
            text = USUAL.replace("1234567890,", f'"{i}",')  # left to Python
        elif i % 7 == 2:
            text = '{"provider_group_id": 1, "location": "https://x/y.json"}'  # remote: no rows
        else:
            names = "null" if i % 3 == 0 else json.dumps([f"n{i}"] * (i % 4))
            tin = json.dumps({"type": None if i % 2 else "ein", "value": f"v{i}"})
            npis = json.dumps(list(range(i % 4)))
            groups = ", ".join([f'{{"npi": {npis}, "tin": {tin}}}'] * (i % 3 + 1))
            text = f'{{"network_name": {names}, "provider_groups": [{groups}]}}'
        entries.append((f"g{i}", text.encode()))
    taken = assert_same(entries)
    assert taken.count(False) == 8 + 5  # 8 left to Python, 5 remote


def test_a_text_given_up_halfway_leaves_nothing_behind() -> None:
    """The groups before the one that is not usual were gathered, then undone: bits included."""
    good = USUAL.replace('"Clinic"', "null").encode()  # a null bit per group
    bad = (
        '{"provider_groups": ['
        + ", ".join([f'{{"npi": [1], "tin": {TIN}}}'] * 6)
        + ', {"npi": [1.5], "tin": {}}]}'
    ).encode()
    entries = [("a", good)] * 5 + [("b", bad)] + [("c", good)] * 5
    assert assert_same(entries) == [True] * 5 + [False] + [True] * 5


def test_take_starts_afresh_and_an_empty_take_is_an_empty_batch() -> None:
    rows = ProviderRows("net")
    assert rows.take().num_rows == 0
    assert rows.add_text("7", USUAL.encode())
    assert rows.count == 2
    assert rows.take().num_rows == 2
    assert rows.count == 0
    assert rows.add_text("1", b'{"provider_groups": []}')
    batch = rows.take()
    assert batch.num_rows == 0 and batch.schema == PROVIDERS_SCHEMA


# Random references: mostly of the usual shape, one in ten times with something that is not.
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_tin = st.fixed_dictionaries(
    {},
    optional={
        "type": st.none() | _text,
        "value": st.none() | _text,
        "business_name": st.none() | _text,
    },
)
_usual_npis = st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)


def _rarely(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else usual)


_group = st.fixed_dictionaries(
    {"tin": _rarely(_tin, st.sampled_from([None, 3, {"type": 1}, {"x": "y"}]))},
    optional={
        "npi": _rarely(_usual_npis, st.lists(st.sampled_from([2**63, 1.5, "1", None]))),
    },
).flatmap(lambda g: _rarely(st.just(g), st.just({**g, "extra": 1})))
_ids = st.integers() | _text | st.floats(allow_infinity=False, allow_nan=False)
_reference = st.fixed_dictionaries(
    {
        "provider_group_id": _ids,
        "provider_groups": _rarely(st.lists(_group, max_size=4), st.none()),
    },
    optional={
        "network_name": st.none() | st.lists(_rarely(_text, st.none()), max_size=3),
        "location": st.none() | _text,
    },
)


@settings(max_examples=max_examples(300), deadline=None)
@given(
    st.lists(_reference, min_size=1, max_size=6),
    st.sampled_from([None, 0, 2]),
    st.booleans(),
)
def test_random_references_give_the_same_rows(
    references: list[dict[str, Any]], indent: int | None, ascii_only: bool
) -> None:
    entries = [
        (str(i), json.dumps(r, indent=indent, ensure_ascii=ascii_only).encode())
        for i, r in enumerate(references)
    ]
    taken = assert_same(entries)
    for (_, text), was_taken in zip(entries, taken, strict=True):
        if was_taken:  # only what Python decodes without counting anything
            assert python_rows([("x", text)])[1] == Quality()


@pytest.mark.parametrize(("read_chunk", "batch_rows"), [(1 << 20, 16_384), (100, 7), (1, 1)])
def test_the_store_gives_the_same_rows_when_python_reads_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_chunk: int, batch_rows: int
) -> None:
    """With C taking no entry (neither into the spill file nor into rows), ProviderStore reads
    every one in Python: the same rows, with records cut by every read of the spill file and
    batches filled at any record."""
    monkeypatch.setattr(providers, "_READ_CHUNK", read_chunk)
    monkeypatch.setattr(providers, "_ROWS_PER_BATCH", batch_rows)
    texts = [
        USUAL,
        USUAL.replace("1234567890,", '"1",'),  # left to Python
        '{"provider_groups": [{"tin": {}}]}',
        '{"provider_group_id": 1, "location": "https://x/y.json"}',  # remote: fetch failed
        USUAL.replace('"N"', '"Ñ"'),
    ]
    tables, defined = [], []
    for c_takes in (True, False):
        with monkeypatch.context() as patched:
            if not c_takes:
                patched.setattr(providers._rows, "spill_references", lambda t, f, at, *_: (at, 0))
                patched.setattr(ProviderRows, "add_records", lambda s, d, at, *_: (at, False))
            store = ProviderStore(tmp_path / f"{c_takes}.spill", "net", Quality())
            try:
                for i in range(30):
                    raw, gid = texts[i % len(texts)].encode(), json_text(i)
                    store.add_references(raw + gid, [(0, len(raw), len(raw), len(raw + gid), 0)])
                    if i % 4 == 0:
                        store.add_inline(f"inline-{i}", [((5, i), "ein", str(i), None)])
                referenced = {str(i) for i in range(30) if i % 6} | {"inline-4", "absent"}
                batches = list(store.columns(referenced))
                assert all(b.num_rows >= batch_rows for b in batches[:-1])
                tables.append(pa.Table.from_batches(batches))
                defined.append(store.unresolved(referenced))
            finally:
                store.close()
    assert tables[0].num_rows > 50
    assert tables[0].equals(tables[1])
    assert defined[0] == defined[1] == 1  # "absent"; remote entries define their keys
