"""The provider store: spill file, typed and generic decoding, row order, remote locations."""

from __future__ import annotations

import gzip
import json
import struct
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrfbatch import provider_rows, providers
from mrfbatch.engines.fast import FastEngine
from mrfbatch.engines.reference import json_text
from mrfbatch.options import ExtractionOptions
from mrfbatch.providers import ProviderStore
from mrfbatch.run_extraction import run_extraction
from mrfbatch.tables import PROVIDER_COLUMNS, PROVIDERS_SCHEMA, Quality
from mrfbatch.transport import TransportSettings
from support.httpserver import FileServer

SETTINGS = TransportSettings(attempts=1, backoff_seconds=0.0, remote_timeout=5.0)
TIN = '{"type": "ein", "value": "12-3456789", "business_name": "Clinic"}'
# The rows of USUAL, as docs/output.md describes them (PROVIDER_COLUMNS after network_id).
USUAL = (
    '{"provider_group_id": 7, "network_name": ["N"], '
    f'"provider_groups": [{{"npi": [1234567890, 1234567891], "tin": {TIN}}}]}}'
)
USUAL_ROWS = [
    ("7", 1234567890, "ein", "12-3456789", "Clinic", ["N"], "file"),
    ("7", 1234567891, "ein", "12-3456789", "Clinic", ["N"], "file"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProviderStore]:
    store = ProviderStore(tmp_path / ".providers.spill", "net", Quality())
    yield store
    store.close()


def rows(store: ProviderStore, referenced: set[str]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for batch in store.columns(referenced):
        assert batch.schema == PROVIDERS_SCHEMA
        columns, n = batch.to_pydict(), batch.num_rows
        assert columns["network_id"] == ["net"] * n
        out.extend(zip(*(columns[c] for c in PROVIDER_COLUMNS[1:]), strict=True))
    return out


def add(store: ProviderStore, group_id: object, raw: bytes, only: set[str] | None = None) -> None:
    """Store one entry, its id given apart (the id's JSON text follows the entry's, where the
    element's key span points, as the reference engine hands entries over)."""
    gid = json_text(group_id)
    store.add_references(raw + gid, [(0, len(raw), len(raw), len(raw) + len(gid), 0)], only)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("-0E0"),
        Decimal("1.00e2"),
        Decimal("1E+3"),
        Decimal("-0.0"),
        Decimal("690.64470"),
        123456789012345678901234567890,
        "é\n\x00",
        [Decimal("1.00e2"), {"a": [Decimal("-0")]}, None, True],
    ],
    ids=repr,
)
def test_json_text_decodes_to_the_same_values(value: object) -> None:
    """What the reference engine writes of a provider_group_id, or of an entry that is not an
    object, decodes as the fast engine's text does: the same values of the same types."""
    decoded = msgspec.json.Decoder(float_hook=Decimal).decode(json_text(value))
    assert decoded == value and repr(decoded) == repr(value)


def counts(quality: Quality) -> tuple[int, dict[str, int], int]:
    return quality.unknown_keys, dict(quality.unknown_key_names), quality.invalid_values


@pytest.mark.parametrize(
    ("text", "unknown_names"),
    [
        (USUAL, {}),
        (
            USUAL.replace('"network_name"', '"extra": {"a": 1}, "network_name"'),
            {"provider_references.extra": 1},
        ),
        (USUAL.replace('"npi"', '"extra": 1, "npi"'), {"provider_groups.extra": 1}),
        (USUAL.replace('"business_name"', '"x": 1, "business_name"'), {"tin.x": 1}),
        (USUAL.replace("1234567890,", '"1234567890",'), {}),  # a numeric string NPI
        (USUAL.replace("1234567890,", "1234567890.0,"), {}),  # a whole number with a fraction
        (USUAL.replace('["N"]', '"N"'), {}),  # one network name, not in a list
        (USUAL.replace('"provider_groups"', '"provider\\u005fgroups"'), {}),  # an escaped key
        (USUAL.replace('"npi": [', '"npi": [1], "npi": ['), {}),  # a repeated key: the last wins
    ],
)
def test_columns_usual_and_unusual_references_give_the_same_rows(
    store: ProviderStore, text: str, unknown_names: dict[str, int]
) -> None:
    quality = store.quality
    add(store, 7, text.encode())
    assert rows(store, {"7"}) == USUAL_ROWS
    assert counts(quality) == (sum(unknown_names.values()), unknown_names, 0)
    assert store.unresolved({"7"}) == 0
    store.close()


@pytest.mark.parametrize(
    "text",
    [
        USUAL,
        USUAL.replace('"provider_group_id": 7', '"provider_group_id": 7.50'),  # kept as text
        USUAL.replace('"provider_group_id": 7,', ""),  # the key comes with the entry
        USUAL.replace('"Clinic"', "null").replace('["N"]', "null"),
        USUAL.replace('"npi": [1234567890, 1234567891]', '"npi": []'),
    ],
)
def test_columns_decodes_the_usual_shape_without_the_generic_path(
    store: ProviderStore, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    def generic(*args: object) -> None:
        raise AssertionError("decoded generically")

    monkeypatch.setattr(provider_rows, "_decoded", generic)
    add(store, 7, text.encode())
    assert len(rows(store, {"7"})) == (1 if '"npi": []' in text else 2)


@pytest.mark.parametrize(
    ("groups", "expected", "invalid"),
    [
        ('[{"npi": [1234567890]}]', [(1234567890, None, None, None)], 1),  # no tin
        (f'[{{"npi": [], "tin": {TIN}}}]', [(0, "ein", "12-3456789", "Clinic")], 0),
        (f'[{{"tin": {TIN}}}]', [(0, "ein", "12-3456789", "Clinic")], 0),
        (f'[{{"npi": ["x", 5], "tin": {TIN}}}]', [(5, "ein", "12-3456789", "Clinic")], 1),
        ('[{"npi": [9], "tin": {"type": "ein", "value": 12}}]', [(9, "ein", "12", None)], 0),
        (f'[3, {{"npi": [9], "tin": {TIN}}}]', [(9, "ein", "12-3456789", "Clinic")], 1),
        ("null", [], 0),
        ("[]", [], 0),
    ],
)
def test_columns_converts_and_counts_unusual_groups(
    store: ProviderStore, groups: str, expected: list[tuple[Any, ...]], invalid: int
) -> None:
    quality = store.quality
    add(store, "g", f'{{"provider_group_id": "g", "provider_groups": {groups}}}'.encode())
    assert rows(store, {"g"}) == [("g", *row, None, "file") for row in expected]
    assert counts(quality) == (0, {}, invalid)
    assert store.unresolved({"g"}) == 0  # defined, even with no rows


def test_columns_keeps_the_exact_text_of_fractional_ids(store: ProviderStore) -> None:
    text = USUAL.replace('"provider_group_id": 7', '"provider_group_id": 690.64470')
    add(store, Decimal("690.64470"), text.encode())
    assert [row[0] for row in rows(store, {"690.64470"})] == ["690.64470", "690.64470"]


def test_columns_keeps_every_entry_of_a_duplicate_id_in_file_order(store: ProviderStore) -> None:
    for gid, npi in ((5, 1), (6, 2), (5, 3)):
        group = {"npi": [npi], "tin": {"type": "ein", "value": "v"}}
        add(store, gid, json.dumps({"provider_group_id": gid, "provider_groups": [group]}).encode())
    assert [(r[0], r[1]) for r in rows(store, {"5", "6"})] == [("5", 1), ("6", 2), ("5", 3)]


def test_columns_interleaves_inline_groups_in_the_order_stored(store: ProviderStore) -> None:
    add(store, 1, b'{"provider_group_id": 1, "provider_groups": [{"npi": [1], "tin": {}}]}')
    store.add_inline("inline-a", [((2, 3), "ein", "a", None)])
    add(store, 2, b'{"provider_group_id": 2, "provider_groups": [{"npi": [4], "tin": {}}]}')
    store.add_inline("inline-b", [((5,), "npi", "5", "B")])
    assert rows(store, {"1", "2"}) == [
        ("1", 1, None, None, None, None, "file"),
        ("inline-a", 2, "ein", "a", None, None, "inline"),
        ("inline-a", 3, "ein", "a", None, None, "inline"),
        ("2", 4, None, None, None, None, "file"),
        ("inline-b", 5, "npi", "5", "B", None, "inline"),
    ]


def test_add_references_with_only_drops_entries_no_rate_needs(store: ProviderStore) -> None:
    """References after in_network: every needed key is known, the others are not kept."""
    quality = store.quality
    for gid in (1, 2, 3):
        group = f'{{"npi": [{gid}], "tin": {TIN}}}'
        ref = f'{{"provider_group_id": {gid}, "extra": 1, "provider_groups": [{group}]}}'
        add(store, gid, ref.encode(), only={"1", "3", "4"})
    assert [r[:2] for r in rows(store, {"1", "3", "4"})] == [("1", 1), ("3", 3)]
    assert store.unresolved({"1", "3", "4"}) == 1  # 4 is defined nowhere
    assert quality.unknown_keys == 2  # only the references that rates use are decoded


def test_add_references_counts_an_invalid_id_and_drops_the_entry(store: ProviderStore) -> None:
    quality = store.quality
    add(store, None, b'{"provider_group_id": null, "provider_groups": []}')
    assert rows(store, {"None"}) == []
    assert quality.invalid_examples == [
        "provider_references.provider_group_id: provider group id None is not a number or a string"
    ]


def test_columns_unreferenced_entries_are_neither_decoded_nor_counted(store: ProviderStore) -> None:
    quality = store.quality
    add(store, 1, USUAL.replace('"network_name"', '"extra": 1, "network_name"').encode())
    add(store, 7, USUAL.encode())
    assert rows(store, {"7"}) == USUAL_ROWS
    assert counts(quality) == (0, {}, 0)


def test_columns_counts_invalid_values_in_file_order(store: ProviderStore) -> None:
    quality = store.quality
    for i in range(25):
        group = f'{{"npi": ["bad{i}"], "tin": {TIN}}}'
        add(store, i, f'{{"provider_group_id": {i}, "provider_groups": [{group}]}}'.encode())
    assert len(rows(store, {str(i) for i in range(25)})) == 25  # one TIN-only row each
    assert quality.invalid_values == 25
    assert quality.invalid_examples == [
        f"npi: expected a 10-digit number, found 'bad{i}'" for i in range(20)
    ]


def test_columns_reads_records_across_read_chunks(
    store: ProviderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(providers, "_READ_CHUNK", 7)
    npis = list(range(1000, 3000))
    group = {"npi": npis, "tin": {"type": "ein", "value": "v"}}
    big = {"provider_group_id": "big", "provider_groups": [group]}
    add(store, "big", json.dumps(big).encode())
    add(store, "é", '{"provider_group_id": "é", "provider_groups": []}'.encode())
    add(store, 7, USUAL.encode())
    got = rows(store, {"big", "é", "7"})
    assert got == [("big", n, "ein", "v", None, None, "file") for n in npis] + USUAL_ROWS
    assert store.unresolved({"big", "é", "7"}) == 0


def test_columns_hands_out_large_batches(store: ProviderStore) -> None:
    ref = {"provider_group_id": 1, "provider_groups": [{"npi": list(range(1, 101)), "tin": {}}]}
    for gid in range(1, 401):
        ref["provider_group_id"] = gid
        add(store, gid, json.dumps(ref).encode())
    sizes = [batch.num_rows for batch in store.columns({str(g) for g in range(1, 401)})]
    assert sum(sizes) == 40_000
    assert all(n >= 8192 for n in sizes[:-1]) and len(sizes) < 10


def test_columns_twice_counts_each_reference_once(store: ProviderStore) -> None:
    add(store, 7, USUAL.replace('"network_name"', '"extra": 1, "network_name"').encode())
    assert rows(store, {"7"}) == rows(store, {"7"}) == USUAL_ROWS
    assert store.quality.unknown_keys == 1


def test_unresolved_before_columns_is_an_error(store: ProviderStore) -> None:
    with pytest.raises(RuntimeError, match=r"only after columns\(\)"):
        store.unresolved(set())


def test_add_after_the_store_was_read_is_an_error(store: ProviderStore) -> None:
    rows(store, set())
    with pytest.raises(RuntimeError, match="added after the store was read"):
        add(store, 7, USUAL.encode())


def test_close_removes_the_spill_file(store: ProviderStore) -> None:
    add(store, 7, USUAL.encode())
    assert store.path.is_file()
    store.close()
    assert list(store.path.parent.iterdir()) == []


def test_fetch_remote_counts_each_reference_once(store: ProviderStore) -> None:
    """With a location about, references are decoded twice (to find it, then for rows)."""
    quality = store.quality
    add(store, 7, USUAL.replace('"network_name"', '"extra": 1, "network_name"').encode())
    add(store, 8, b'{"provider_group_id": 8, "loc\\u0061tion": "ftp://h.example/p.json"}')
    add(store, 9, b'{"provider_group_id": 9, "npi": [1], "provider_groups": [{"npi": ["x"]}]}')
    outcome = store.fetch_remote({"7", "8", "9"}, SETTINGS)
    assert (outcome.fetched, outcome.failed) == (0, 1)
    assert "ftp://h.example/p.json: not an http(s) URL" in outcome.warnings[0]
    assert rows(store, {"7", "8", "9"}) == [*USUAL_ROWS, ("9", 0, None, None, None, None, "file")]
    assert counts(quality) == (
        2,
        {"provider_references.extra": 1, "provider_references.npi": 1},
        2,
    )
    assert quality.invalid_examples == [
        "provider_groups.tin: expected an object, found None",
        "npi: expected a 10-digit number, found 'x'",
    ]
    assert store.unresolved({"7", "8", "9"}) == 0


def test_fetch_remote_rows_take_the_place_of_their_reference(
    store: ProviderStore, http_server: FileServer
) -> None:
    remote = {"provider_groups": [{"npi": [21, 22], "tin": {"type": "ein", "value": "r"}}]}
    url = http_server.add("/refs/r.json", json.dumps(remote).encode())
    add(store, 1, b'{"provider_group_id": 1, "provider_groups": [{"npi": [1], "tin": {}}]}')
    text = f'{{"provider_group_id": 2, "network_name": ["R"], "location": "{url}"}}'
    add(store, 2, text.encode())
    add(store, 3, b'{"provider_group_id": 3, "provider_groups": [{"npi": [3], "tin": {}}]}')
    add(store, 4, f'{{"provider_group_id": 4, "location": "{url}"}}'.encode())
    outcome = store.fetch_remote({"1", "2", "3", "4"}, SETTINGS)
    assert (outcome.fetched, outcome.failed, outcome.warnings) == (1, 0, [])
    assert rows(store, {"1", "2", "3", "4"}) == [
        ("1", 1, None, None, None, None, "file"),
        ("2", 21, "ein", "r", None, ["R"], "remote"),
        ("2", 22, "ein", "r", None, ["R"], "remote"),
        ("3", 3, None, None, None, None, "file"),
        ("4", 21, "ein", "r", None, None, "remote"),
        ("4", 22, "ein", "r", None, None, "remote"),
    ]
    assert http_server.hits("/refs/r.json") == 1


def test_fetch_remote_lists_the_first_failures_with_their_reasons(store: ProviderStore) -> None:
    """Of 103 locations that cannot be fetched, the first 100 are listed, in order."""
    urls = [f"ftp://h.example/{i}.json" for i in range(103)]
    for i, url in enumerate(urls):
        add(store, i, f'{{"provider_group_id": {i}, "location": "{url}"}}'.encode())
    outcome = store.fetch_remote({str(i) for i in range(103)}, SETTINGS)
    assert (outcome.fetched, outcome.failed) == (0, 103)
    assert outcome.failures == [
        {"url": url, "error": f"{url}: not an http(s) URL", "retryable": False}
        for url in urls[:100]
    ]
    assert outcome.retryable is False  # no scheme but http(s) is fetched, on any try
    assert outcome.warnings == [
        "103 of 103 remote provider-reference files could not be fetched; their groups have no "
        "provider rows (first: ftp://h.example/0.json: not an http(s) URL); remote_failures "
        "names the first 100 and why"
    ]


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_fetch_remote_skips_a_file_over_the_limit(
    store: ProviderStore, http_server: FileServer, packed: bool
) -> None:
    """The limit is on the file's JSON, decoded: a small gzip file can hold too much."""
    limit = 4096
    small = {"provider_groups": [{"npi": [31], "tin": {"type": "ein", "value": "s"}}]}
    small_text = json.dumps(small).encode().ljust(limit)  # exactly at the limit: it is read
    large = {"provider_groups": [{"npi": [41], "tin": {"type": "ein", "value": "l"}}] * 14000}
    large_text = json.dumps(large).encode()
    assert len(large_text) > 100 * limit
    if packed:
        large_text = gzip.compress(large_text)
        assert len(large_text) < limit
    small_url = http_server.add("/refs/small.json", small_text)
    large_url = http_server.add("/refs/large.json", large_text)
    add(store, 1, f'{{"provider_group_id": 1, "location": "{small_url}"}}'.encode())
    add(store, 2, f'{{"provider_group_id": 2, "location": "{large_url}"}}'.encode())
    outcome = store.fetch_remote({"1", "2"}, SETTINGS, max_bytes=limit)
    assert (outcome.fetched, outcome.failed) == (1, 1)
    assert len(outcome.warnings) == 1
    assert "1 of 2 remote provider-reference files could not be fetched" in outcome.warnings[0]
    assert f"{large_url}: more than {limit:,} bytes of JSON" in outcome.warnings[0]
    assert "(max_value_mb)" in outcome.warnings[0]
    assert rows(store, {"1", "2"}) == [("1", 31, "ein", "s", None, None, "remote")]


@pytest.mark.parametrize(
    ("engine", "max_value_mb", "limit"),
    [("fast", 1, "1 MB"), ("reference", 1, "1 MB"), (FastEngine(max_value=4096), 9, "4,096 bytes")],
    ids=["fast", "reference", "engine-object"],
)
def test_run_extraction_skips_a_remote_file_over_max_value(
    http_server: FileServer, tmp_path: Path, engine: Any, max_value_mb: int, limit: str
) -> None:
    """max_value_mb (or an engine object's own limit) bounds a remote file too; the file's
    other groups and the rates are still written, and the extraction is incomplete."""
    large = {"provider_groups": [{"npi": [41], "tin": {"type": "ein", "value": "l"}}] * 30000}
    url = http_server.add("/refs/large.json", json.dumps(large).encode())
    assert len(json.dumps(large)) > 1 << 20
    doc = tmp_path / "in.json"
    doc.write_text(
        f'{{"provider_references": [{USUAL}, {{"provider_group_id": 8, "location": "{url}"}}], '
        '"in_network": [{"billing_code": "1", "negotiated_rates": [{"provider_references": '
        '[7, 8], "negotiated_prices": [{"negotiated_rate": 1.5}]}]}]}'
    )
    result = run_extraction(
        str(doc),
        tmp_path / "out",
        ExtractionOptions(engine=engine, max_value_mb=max_value_mb),
        network_id="net",
    )
    assert (result.status, result.rate_rows, result.provider_rows) == ("incomplete", 1, 2)
    assert (result.remote_references_fetched, result.remote_references_failed) == (0, 1)
    assert f"{url}: more than {limit} of JSON" in result.incomplete[0]
    assert result.warnings == []


def test_run_extraction_removes_spill_files_of_a_killed_run(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "net"
    folder.mkdir(parents=True)
    for name in (".providers-99.spill", ".providers-98.sqlite"):
        (folder / name).write_bytes(b"left by a killed run")
    doc = tmp_path / "in.json"
    doc.write_text(
        f'{{"provider_references": [{USUAL}], "in_network": [{{"billing_code": "1", '
        '"negotiated_rates": [{"provider_references": [7], '
        '"negotiated_prices": [{"negotiated_rate": 1.5}]}]}]}'
    )
    result = run_extraction(str(doc), tmp_path / "out", network_id="net")
    assert (result.status, result.rate_rows, result.provider_rows) == ("success", 1, 2)
    assert sorted(p.name for p in folder.iterdir()) == [
        "providers.parquet",
        "rates.parquet",
        "status.json",
    ]


def spilled_records(path: Path) -> list[tuple[int, str, bytes]]:
    """(kind, key, text) of each record of a spill file: kind (1 byte), key and text lengths
    (4 bytes each, little-endian), the key, the text."""
    spill, records, at = path.read_bytes(), [], 0
    while at < len(spill):
        key_size, size = struct.unpack_from("<II", spill, at + 1)
        key = spill[at + 9 : at + 9 + key_size].decode()
        records.append((spill[at], key, spill[at + 9 + key_size : at + 9 + key_size + size]))
        at += 9 + key_size + size
    return records


def found_in(entries: list[tuple[bytes, bytes]]) -> tuple[bytearray, list[tuple[int, ...]]]:
    """The text of an array of entries (id text, entry text), and the entries as the C
    scanner finds them: (start, end, key_start, key_end, flags)."""
    text, found = bytearray(b"["), []
    for gid, raw in entries:
        key_at = len(text) + raw.index(gid)
        found.append((len(text), len(text) + len(raw), key_at, key_at + len(gid), 0))
        text += raw + b","
    return text, found


def take_none(text: Any, found: Any, at: int, *rest: Any) -> tuple[int, bool]:
    """spill_references that writes nothing: Python reads every entry."""
    return at, False


@pytest.fixture(params=["C", "Python"])
def spill_writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Who writes add_references' records: the C extension, or Python (C taking none)."""
    if request.param == "Python":
        monkeypatch.setattr(providers._rows, "spill_references", take_none)
    return str(request.param)


ENTRIES = [
    (b"1", b'{"provider_group_id":1,"provider_groups":[]}'),
    ('"é"'.encode(), '{"provider_group_id":"é","location":"https://h/x"}'.encode()),
    (b"2", b'{"provider_group_id":2,"network_name":["\\u0041"]}'),
    (b"3.40880", b'{"provider_group_id":3.40880,"provider_groups":[]}'),
    (b'"x\\"y"', b'{"provider_group_id":"x\\"y","provider_groups":[]}'),
    (b"true", b'{"provider_group_id":true,"provider_groups":[]}'),
    (b"-0", b'{"provider_group_id":-0,"provider_groups":[]}'),
    (b"12", b'{"provider_group_id":12,"provider_groups":[]}'),
    (b"-12", b'{"provider_group_id":-12,"provider_groups":[]}'),
    (b"12.50", b'{"provider_group_id":12.50,"provider_groups":[]}'),
    (b"-0.5", b'{"provider_group_id":-0.5,"provider_groups":[]}'),
    (b"0.0000001", b'{"provider_group_id":0.0000001,"provider_groups":[]}'),
    (b"1e3", b'{"provider_group_id":1e3,"provider_groups":[]}'),
    (b"0", b'{"provider_group_id":0,"provider_groups":[]}'),
]


def store_one_by_one(
    store: ProviderStore,
    entries: list[tuple[bytes, bytes]],
    only: set[str] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The oracle: each entry stored by itself, its id decoded by Python's json module, and
    read in Python (C takes none)."""
    with monkeypatch.context() as patched:
        patched.setattr(providers._rows, "spill_references", take_none)
        for gid, raw in entries:
            add(store, json.loads(gid, parse_float=Decimal), raw, only)


@pytest.mark.parametrize("buffer", [1 << 20, 40])
@pytest.mark.parametrize("only", [None, {"1", "é", "3.40880", 'x"y', "12", "1E-7", "-12"}])
def test_add_references_stores_what_python_stores_one_by_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spill_writer: str,
    buffer: int,
    only: set[str] | None,
) -> None:
    """Entries as the scanner finds them become the same spill file, record for record, as
    one entry at a time with the id json decodes: the same keys, the same entries dropped and
    counted, and a `location` or `\\u` marks only its own entry; in C or in Python, however
    often the write buffer fills."""
    monkeypatch.setattr(providers, "_WRITE_BUFFER", buffer)
    text, found = found_in(ENTRIES)
    one = ProviderStore(tmp_path / "one.spill", "net", Quality())
    many = ProviderStore(tmp_path / "many.spill", "net", Quality())
    store_one_by_one(one, ENTRIES, only, monkeypatch)
    many.add_references(text, found, only)
    one._complete()
    many._complete()
    records = spilled_records(tmp_path / "many.spill")
    assert records == spilled_records(tmp_path / "one.spill")
    # true is no id (counted); a number's key is the text Python gives its int or Decimal
    keys = ["1", "é", "2", "3.40880", 'x"y', None, "0", "12", "-12", "12.50", "-0.5", "1E-7"]
    keys += ["1E+3", "0"]
    assert records == [
        (1 if b"location" in raw or b"\\u" in raw else 0, key, raw)
        for (_, raw), key in zip(ENTRIES, keys, strict=True)
        if key is not None and (only is None or key in only)
    ]
    assert counts(many.quality) == counts(one.quality)
    assert many.quality.invalid_values == 1
    assert many._may_locate and one._may_locate
    one.close()
    many.close()


JSON_NUMBERS = st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,12})?([eE][+-]?[0-9]{1,3})?\Z")


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(JSON_NUMBERS, min_size=1, max_size=8))
def test_add_references_keys_numbers_as_python_does(ids: list[str]) -> None:
    """Whichever number an id is, the C writer and Python give it the same key: the text of
    the int or Decimal it decodes to (the C writer leaves the ones it cannot spell to Python)."""
    entries = [
        (i.encode(), b'{"provider_group_id":%s,"provider_groups":[]}' % i.encode()) for i in ids
    ]
    text, found = found_in(entries)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        one = ProviderStore(Path(tmp) / "one.spill", "net", Quality())
        many = ProviderStore(Path(tmp) / "many.spill", "net", Quality())
        store_one_by_one(one, entries, None, monkeypatch)
        many.add_references(text, found)
        one._complete()
        many._complete()
        assert spilled_records(Path(tmp) / "many.spill") == spilled_records(Path(tmp) / "one.spill")
        one.close()
        many.close()


@pytest.mark.parametrize(
    ("unusual", "keys", "invalid"),
    [
        ("flags", ["0", "1", "2", "3"], 0),  # Python reads it
        ("no id", ["0", "1", "3"], 1),
        ("not an object", ["0", "1", "3"], 1),
        ("an id C cannot spell", ["0", "1", "2E+1", "3"], 0),  # Python spells it
    ],
)
def test_add_references_leaves_unusual_entries_to_python(
    tmp_path: Path, spill_writer: str, unusual: str, keys: list[str], invalid: int
) -> None:
    """An entry the C writer does not take is read in Python, stored or counted, in its place
    among the others."""
    entries = [(b"%d" % i, b'{"provider_group_id":%d,"provider_groups":[]}' % i) for i in range(4)]
    if unusual == "an id C cannot spell":
        entries[2] = (b"2e1", b'{"provider_group_id":2e1,"provider_groups":[]}')
    text, found = found_in(entries)
    start, end, key_start, key_end, _ = found[2]
    found[2] = {
        "flags": (start, end, key_start, key_end, 2),
        "no id": (start, end, -1, -1, 0),
        "not an object": (key_start, key_end, key_start, key_end, 0),
    }.get(unusual, found[2])
    store = ProviderStore(tmp_path / "p.spill", "net", Quality())
    store.add_references(text, found)
    store._complete()
    assert [key for _, key, _ in spilled_records(tmp_path / "p.spill")] == keys
    assert store.quality.invalid_values == invalid
    store.close()
