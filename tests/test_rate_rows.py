"""The C rate-row builder (mrfbatch._rows.RateRows) against the Python path it falls back to.

`ItemRows.native_head` reads a matched item of the usual shape in C, and `native_batches`
makes its rows; for anything else it gives up and the item is decoded in Python. Whatever it
takes must give exactly the batches, rows and referenced group ids that `decode_item` and
`ItemRows.typed_batches` give for the same text.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrfbatch import _rows, rates
from mrfbatch.items import LargeItem, TypedItem, decode_item
from mrfbatch.rates import ROWS_PER_BATCH, ItemRows
from mrfbatch.tables import RATES_SCHEMA, Quality
from mrfbatch.writers import TableWriter
from support.budget import max_examples

PRICE = {
    "negotiated_type": "negotiated",
    "negotiated_rate": 27.48,
    "expiration_date": "2026-06-30",
    "service_code": ["02", "11"],
    "billing_class": "professional",
    "setting": "outpatient",
    "billing_code_modifier": ["59"],
    "additional_information": "note",
}
ITEM = {
    "negotiation_arrangement": "ffs",
    "name": "Service",
    "billing_code_type": "CPT",
    "billing_code_type_version": "2024",
    "billing_code": "22530",
    "description": "MRI",
    "negotiated_rates": [
        {"provider_references": [184, 1225], "negotiated_prices": [PRICE, PRICE]},
        {"provider_references": [603.6338, "g7"], "negotiated_prices": [PRICE]},
    ],
}


def item_rows() -> ItemRows:
    inline: dict[str, Any] = {}  # (none of these items has inline groups)
    return ItemRows("net", Quality(), inline.__setitem__)


def python_batches(text: bytes) -> tuple[list[pa.RecordBatch], set[str]]:
    item = decode_item(text)
    assert isinstance(item, TypedItem | LargeItem), "the oracle needs the usual shape"
    rows = item_rows()
    return list(rows.typed_batches(item)), rows.referenced


def native_batches(text: bytes) -> tuple[list[pa.RecordBatch], set[str]] | None:
    rows = item_rows()
    head = rows.native_head(text)
    if head is None:
        return None
    item = decode_item(text)
    assert isinstance(item, TypedItem | LargeItem)
    assert head[6] == item.billing_code and type(head[6]) is type(item.billing_code)
    return list(rows.native_batches(head, text)), rows.referenced


def assert_same(text: bytes) -> bool:
    """Whether C took the item; when it did, its batches are the Python path's."""
    got = native_batches(text)
    if got is None:
        return False
    expected = python_batches(text)
    assert [b.num_rows for b in got[0]] == [b.num_rows for b in expected[0]]
    for mine, theirs in zip(got[0], expected[0], strict=True):
        assert mine.schema == RATES_SCHEMA
        assert mine.to_pylist() == theirs.to_pylist()
        assert mine.equals(theirs)
    assert got[1] == expected[1]
    return True


def item(**changes: Any) -> bytes:
    return json.dumps({**ITEM, **changes}, ensure_ascii=False).encode()


def price(**changes: Any) -> bytes:
    rates = [{"provider_references": [1], "negotiated_prices": [{**PRICE, **changes}]}]
    return item(negotiated_rates=rates)


@pytest.mark.parametrize(
    "text",
    [
        item(),
        json.dumps(ITEM, separators=(",", ":")).encode(),
        json.dumps(ITEM, indent=2).replace("\n", "\r\n").encode(),
        item(billing_code=470),  # an int code, as msgspec gives it
        item(billing_code=None, name=None, description="Ünïcode ✓"),
        item(negotiated_rates=None),
        item(negotiated_rates=[]),
        json.dumps({k: v for k, v in ITEM.items() if k != "negotiated_rates"}).encode(),
        item(severity_of_illness="3"),
        item(
            bundled_codes=[
                {"billing_code_type": "CPT", "billing_code": "1"},
                {"billing_code": "2", "description": "x", "billing_code_type_version": "1"},
                {},
            ],
            covered_services=[],
        ),
        item(bundled_codes=None, covered_services=[{"billing_code_type": "HCPCS"}]),
        item(negotiated_rates=[{"provider_references": [1]}]),  # ids, but no prices
        item(negotiated_rates=[{"negotiated_prices": None}, {"negotiated_prices": []}]),
        item(negotiated_rates=[{"provider_references": None, "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [], "negotiated_prices": [PRICE]}]),
        # an empty first id: a 0-byte memcpy to NULL before _rows_arrow.h checked (UBSan)
        item(negotiated_rates=[{"negotiated_prices": [PRICE], "provider_references": ["", "a"]}]),
        item(negotiated_rates=[{"provider_references": [0, 10.0, 1.25], "negotiated_prices": []}]),
        price(negotiated_rate=100),  # an integer rate is a float
        price(negotiated_rate=-0.0),
        price(negotiated_rate=1e-300),
        price(negotiated_rate=123456789012345678901234567890),
        price(negotiated_rate=0.1 + 0.2),
        price(negotiated_rate=None, service_code=None, billing_code_modifier=[]),
        price(service_code=[], setting=None),
        {**PRICE}.keys() and item(negotiated_rates=[{"negotiated_prices": [{}]}]),
        # more rows than a batch: batches end after the rate that fills them
        item(
            negotiated_rates=[
                {"provider_references": [i], "negotiated_prices": [PRICE] * 3000} for i in range(7)
            ]
        ),
        item(negotiated_rates=[{"negotiated_prices": [PRICE]}] * (ROWS_PER_BATCH + 5)),
    ],
)
def test_usual_items_are_taken_in_c_with_the_same_rows(text: bytes) -> None:
    assert assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        item(extra=1),
        item(negotiated_rates=[{"negotiated_prices": [PRICE], "x": 1}]),
        price(extra=1),
        item(bundled_codes=[{"billing_code": "1", "x": 2}]),
        item(bundled_codes={"billing_code": "1"}),
        item(bundled_codes=[{"billing_code": 1}]),
        item(name='a"b'),  # an escape: decoded in Python
        price(setting="in\\out"),
        item(billing_code=1.5),
        item(billing_code=-5),
        item(billing_code=True),
        item(name=3),
        item(negotiated_rates={}),
        item(negotiated_rates=[[]]),
        item(negotiated_rates=[{"provider_references": 7, "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [-1], "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [0.5], "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [1.5e-07], "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [True], "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_references": [None], "negotiated_prices": [PRICE]}]),
        item(negotiated_rates=[{"provider_groups": [], "negotiated_prices": [PRICE]}]),
        price(negotiated_rate="12"),
        price(service_code=["1", None]),
        price(service_code="1"),
        price(billing_class=["x"]),
        price(negotiated_type=None, setting=False),
    ],
)
def test_other_items_are_left_to_python(text: bytes) -> None:
    assert not assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        item().replace(b'"billing_code": "22530"', b'"billing_code": "1", "billing_code": "2"'),
        item().replace(b'"setting": "outpatient"', b'"setting": "a", "setting": "b"'),
        item().replace(b"27.48", b"1e400"),  # out of a float's range
        b"[]",
        b'"x"',
    ],
)
def test_repeated_keys_and_odd_values_are_left_to_python(text: bytes) -> None:
    assert item_rows().native_head(text) is None


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
_opt_text = st.none() | _text


def _rarely(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else usual)


_price = st.fixed_dictionaries(
    {},
    optional={
        "negotiated_type": _opt_text,
        "negotiated_rate": st.none()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(10**20), 10**20),
        "expiration_date": _opt_text,
        "service_code": st.none() | st.lists(_text, max_size=3),
        "billing_class": _opt_text,
        "setting": _opt_text,
        "billing_code_modifier": st.none() | st.lists(_text, max_size=2),
        "additional_information": _opt_text,
    },
).flatmap(lambda p: _rarely(st.just(p), st.just({**p, "other": 1})))
_id = st.integers(0, 10**12) | _text | st.decimals(1, 10**6, places=3).map(float)
_rate = st.fixed_dictionaries(
    {},
    optional={
        "provider_references": st.none() | _rarely(st.lists(_id, max_size=4), st.just(5)),
        "negotiated_prices": st.none() | st.lists(_price, max_size=4),
    },
)
_code = st.fixed_dictionaries(
    {},
    optional={
        "billing_code_type": _opt_text,
        "billing_code_type_version": _opt_text | st.integers(0, 3000),
        "billing_code": _opt_text,
        "description": _opt_text,
    },
)
_item = st.fixed_dictionaries(
    {
        "billing_code": _text | st.integers(0, 10**9),
        "negotiated_rates": st.lists(_rate, max_size=5),
    },
    optional={
        "name": _opt_text,
        "negotiation_arrangement": _opt_text,
        "description": _opt_text,
        "billing_code_type": _opt_text,
        "bundled_codes": st.none() | st.lists(_code, max_size=2),
        "covered_services": st.none() | st.lists(_code, max_size=2),
    },
)


@settings(max_examples=max_examples(300), deadline=None)
@given(_item, st.sampled_from([None, 0, 2]), st.booleans())
def test_random_items_give_the_same_rows(
    value: dict[str, Any], indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    taken = assert_same(text)
    usual = isinstance(decode_item(text), TypedItem) and b"\\" not in text
    if usual and all(_own_key_ids(r.get("provider_references")) for r in value["negotiated_rates"]):
        assert taken, "an item of the usual shape was left to Python"


def _own_key_ids(ids: object) -> bool:
    """Whether C takes these provider_references: null, or a list of strings and numbers
    whose JSON text is their key (no sign or exponent, no fraction of 0.x)."""
    if ids is None:
        return True
    return isinstance(ids, list) and all(
        isinstance(i, str)
        or (isinstance(i, int) and i >= 0)
        or (isinstance(i, float) and i >= 1 and "e" not in json.dumps(i))
        for i in ids
    )


def test_small_items_share_batches_and_keep_the_files_order(tmp_path: Path) -> None:
    """Rows read in C wait, gathered, for a batch of about ROWS_PER_BATCH rows over several
    items; an item Python reads writes them first, so the table keeps the file's order."""
    inline = [{"npi": [1234567893], "tin": {"type": "ein", "value": "12-3456789"}}]
    texts = [
        item(),
        item(billing_code=470, name=None, description="Ünïcode ✓"),
        item(negotiated_rates=[]),
        item(bundled_codes=[{"billing_code_type": "CPT", "billing_code": "1"}]),
        item(negotiated_rates=[{"provider_groups": inline, "negotiated_prices": [PRICE]}]),
        item(severity_of_illness="3", covered_services=[{"billing_code": "2"}]),
        item(negotiated_rates=[{"provider_references": [9], "negotiated_prices": [PRICE] * 5000}]),
        item(billing_code="J1885", negotiated_rates=[{"negotiated_prices": [PRICE] * 4000}]),
        item(billing_code_type="HCPCS"),
    ]
    rows = item_rows()
    writer = TableWriter(tmp_path / "rates.parquet", RATES_SCHEMA, batch_size=100_000)
    for text in texts:
        found = rows.read(text)
        assert found is not None
        found.write(writer)
    # Handed over: the first six rows before the item Python read, its row, and the batch
    # that reached ROWS_PER_BATCH rows with the 4,000 prices; the last item's 3 rows wait.
    assert writer.pending == 6 + 3 + 1 + 3 + 5000 + 4000
    rows.write_gathered(writer)
    writer.commit()
    got = pq.read_table(tmp_path / "rates.parquet")
    expected = [row for text in texts for b in python_batches(text)[0] for row in b.to_pylist()]
    assert got.num_rows == 3 + 3 + 3 + 1 + 3 + 5000 + 4000 + 3  # the prices of `texts`
    assert got.to_pylist() == expected
    assert [r["billing_code"] for r in expected[:7]] == ["22530"] * 3 + ["470"] * 3 + ["22530"]


def write_run(rows: ItemRows, text: bytes, found: list[Any], writer: TableWriter) -> list[int]:
    """Hand `found` over as `Extraction.in_network_items` does; the indices left to `read`."""
    left, at = [], 0
    while at < len(found):
        at = rows.write_usual(bytearray(text), found, at, writer)
        if at < len(found):
            left.append(at)
            start, end = found[at][:2]
            one = rows.read(text[start:end])
            if one is not None:
                one.write(writer)
            at += 1
    return left


RUN_TEXTS = [
    item(),
    item(billing_code=470, name=None, description="Ünïcode ✓"),
    item(negotiated_rates=[]),
    item(negotiated_rates=None),
    item(extra=1),  # 4: not of the usual shape
    item(bundled_codes=[{"billing_code_type": "CPT", "billing_code": "1"}]),
    b"[]",  # 6: not an object
    item(severity_of_illness="3", covered_services=[{"billing_code": "2"}]),
    # a batch fills inside this item (8,000 rows after the 12 before): its rates go on
    item(negotiated_rates=[{"provider_references": [9], "negotiated_prices": [PRICE] * 8000}]),
    item(billing_code="J1885", negotiated_rates=[{"negotiated_prices": [PRICE]}] * 20000),
    item(negotiated_rates=[{"provider_references": ["a", 7], "negotiated_prices": [PRICE]}]),
    item(name='a"b'),  # 11: an escape, left to Python
    # 12-16: C reads the rates and makes rows as it goes; an odd rate after some rows undoes
    # them (validity bits too: the next rows have nulls), and their ids stay unreferenced
    item(
        negotiated_rates=[
            {"provider_references": [11], "negotiated_prices": [PRICE] * 3},
            {"provider_references": [12], "negotiated_prices": [PRICE], "x": 1},
        ]
    ),
    item(negotiated_rates=[{"provider_references": [13], "negotiated_prices": [PRICE]}]).replace(
        b'"provider_references": [13]', b'"provider_references": [13], "provider_references": [14]'
    ),
    price(setting=None, service_code=None, billing_code_modifier=None, negotiated_rate=None),
    # a batch fills inside this item, then its rates after the batch's end are checked
    item(negotiated_rates=[{"negotiated_prices": [PRICE]}] * 9000 + [{"x": 1}]),
    item(),
]


@pytest.mark.parametrize("gap", [b",", b" ,\n  "])
def test_items_handed_over_in_a_run_give_the_rows_of_each(gap: bytes, tmp_path: Path) -> None:
    """Items written by `write_usual` a run at a time give the rows, in the file's order, and
    the group keys that `read` and `write` of each item give; the ones C does not read are
    left to Python where they are."""
    text, found = b"[", []
    for one in RUN_TEXTS:
        text += gap if len(found) else b""
        found.append((len(text), len(text) + len(one), -1, -1, 0))
        text += one
    text += b"]"
    runs = item_rows()
    writer = TableWriter(tmp_path / "run.parquet", RATES_SCHEMA, batch_size=100_000)
    assert write_run(runs, text, found, writer) == [4, 6, 11, 12, 13, 15]
    runs.write_gathered(writer)
    writer.commit()
    one_rows, one_referenced = rows_of(RUN_TEXTS, False, tmp_path)
    got = pq.read_table(tmp_path / "run.parquet")
    # 3 prices per item of ITEM's rates, 1 per PRICE rate: RUN_TEXTS by hand.
    assert got.num_rows == 3 + 3 + 3 + 3 + 3 + 8000 + 20000 + 1 + 3 + (3 + 1) + 1 + 1 + 9000 + 3
    assert got.to_pylist() == one_rows
    assert runs.referenced == one_referenced
    keys = {"184", "1225", "603.6338", "g7", "9", "a", "7", "11", "12", "14", "1"}  # by hand
    assert runs.referenced == keys
    codes = got.column("billing_code").to_pylist()
    assert codes[3:6] == ["470"] * 3 and codes[-9014] == "J1885" != codes[-9013]
    assert got.column("setting").to_pylist()[-9005:-9003] == ["outpatient", None]


@pytest.mark.parametrize("at", [0, 3])
def test_write_usual_stops_at_the_item_c_does_not_read(at: int, tmp_path: Path) -> None:
    texts = [item(), item(), item(), item(extra=1), item()]
    text = b",".join(texts)
    starts = [sum(len(t) + 1 for t in texts[:i]) for i in range(len(texts))]
    found = [(s, s + len(t), -1, -1, 0) for s, t in zip(starts, texts, strict=True)]
    rows = item_rows()
    writer = TableWriter(tmp_path / "rates.parquet", RATES_SCHEMA, batch_size=100_000)
    assert rows.write_usual(bytearray(text), found, at, writer) == 3
    gathered = rows.take_gathered()
    assert (gathered.num_rows if gathered else 0) == 3 * (3 - at)  # 3 prices per item
    assert rows.write_usual(bytearray(text), found, 4, writer) == 5
    gathered = rows.take_gathered()
    assert gathered is not None and gathered.num_rows == 3
    assert writer.pending == 0


@pytest.mark.parametrize("found", [[(0, 10**6, -1, -1, 0)], [(5, 4, -1, -1, 0)], [(-1, 3)], [(1,)]])
def test_write_usual_refuses_spans_outside_the_text(found: list[Any], tmp_path: Path) -> None:
    writer = TableWriter(tmp_path / "rates.parquet", RATES_SCHEMA, batch_size=100_000)
    with pytest.raises((ValueError, TypeError), match="add_items"):
        item_rows().write_usual(bytearray(item()), found, 0, writer)


def test_write_usual_undoes_the_rows_of_an_item_it_gives_up_on(tmp_path: Path) -> None:
    """An odd rate after some rows of an item: those rows are undone, validity bits too, so
    the next item's nulls stay nulls even when nothing was taken in between."""
    late = [{"provider_references": [5], "negotiated_prices": [PRICE] * 4}, {"x": 1}]
    nulls = price(setting=None, service_code=None, negotiated_rate=None, billing_class=None)
    texts = [item(), item(negotiated_rates=late), nulls]
    text = b",".join(texts)
    starts = [sum(len(t) + 1 for t in texts[:i]) for i in range(len(texts))]
    found = [(s, s + len(t), -1, -1, 0) for s, t in zip(starts, texts, strict=True)]
    rows = item_rows()
    writer = TableWriter(tmp_path / "rates.parquet", RATES_SCHEMA, batch_size=100_000)
    assert rows.write_usual(bytearray(text), found, 0, writer) == 1
    assert rows.write_usual(bytearray(text), found, 2, writer) == 3
    rows.write_gathered(writer)
    writer.commit()
    got = pq.read_table(tmp_path / "rates.parquet").to_pylist()
    assert len(got) == 3 + 1
    assert got[3]["setting"] is None and got[3]["billing_class"] is None
    assert got[3]["service_code"] is None and got[3]["negotiated_rate"] is None
    assert got[2]["setting"] == "outpatient" and got[3]["billing_code_modifier"] == ["59"]
    assert "5" not in rows.referenced and rows.referenced == {"184", "1225", "603.6338", "g7", "1"}


RATE = {"provider_references": [3], "negotiated_prices": [PRICE]}


def rows_of(texts: list[bytes], runs: bool, folder: Path) -> tuple[list[Any], set[str]]:
    """The rows and group keys of `texts`: handed over as one run, or one at a time."""
    found, at = [], 0
    for one in texts:
        found.append((at, at + len(one), -1, -1, 0))
        at += len(one) + 1
    rows = item_rows()
    path = folder / f"{runs}.parquet"
    writer = TableWriter(path, RATES_SCHEMA, batch_size=100_000)
    if runs:
        write_run(rows, b",".join(texts), found, writer)
    else:
        for one in texts:
            read = rows.read(one)
            if read is not None:
                read.write(writer)
    rows.write_gathered(writer)
    writer.commit()
    return pq.read_table(path).to_pylist(), rows.referenced


@settings(max_examples=max_examples(200), deadline=None)
@given(st.lists(_item, min_size=1, max_size=8), st.sampled_from([1, 2, 5, ROWS_PER_BATCH]))
@example(  # an odd price after the batch is full: the item is Python's, whole
    [{"billing_code": "1", "negotiated_rates": [RATE, {"negotiated_prices": [{"other": 1}]}]}],
    1,
)
def test_random_runs_give_the_rows_of_each_item(values: list[Any], limit: int) -> None:
    """Random items (some odd), a run at a time with batches of `limit` rows, give the rows
    and keys they give one at a time."""
    texts = [json.dumps(value).encode() for value in values]
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(rates, "ROWS_PER_BATCH", limit)
        assert rows_of(texts, True, Path(folder)) == rows_of(texts, False, Path(folder))


def test_group_ids_met_again_reach_each_set_given() -> None:
    """The C side remembers the ids it added to a set, to skip them when met again: another
    set given later still gets every id, and ids met again are in it once."""
    text = item(
        negotiated_rates=[
            {"provider_references": [7, "x", ""], "negotiated_prices": [PRICE]},
            {"provider_references": [7, "x", "é"], "negotiated_prices": [PRICE]},
        ]
    )
    native = _rows.RateRows()
    head = native.item_head(text)
    assert head is not None
    first: set[str] = set()
    second: set[str] = set()
    for keys in (first, first, second):
        at, ended = native.add_rates(text, head[9], ROWS_PER_BATCH, keys, (None,) * 7)
        assert ended and at > head[9]
    assert first == second == {"7", "x", "", "é"}
    assert native.count == 6  # 2 rows per pass
