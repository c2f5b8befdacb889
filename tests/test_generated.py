"""run_extraction on synthetic files (tests/support/synth.py) served locally and over HTTP.

Every table is compared order-independently with the generator's own oracle
(``SynthFile.expected``); inline group keys are compared through their provider rows
(``oracle.canonical``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args

import pyarrow.parquet as pq
import pytest

from mrfbatch import items as items_module
from mrfbatch import rates as rates_module
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.transport import TransportSettings
from support import containers, oracle, synth
from support.httpserver import FileServer

# The keywords of ExtractionOptions a test may give with the others.
OPTIONS = {field.name for field in dataclasses.fields(ExtractionOptions)}


NET = "synthnet"
# A table of contents (CMS schema: reporting_structure of plans and in-network file locations).
TOC = json.dumps(
    {
        "reporting_entity_name": "Synthetic Health Plan",
        "reporting_entity_type": "health insurance issuer",
        "reporting_structure": [
            {
                "reporting_plans": [
                    {
                        "plan_name": "Synthetic PPO",
                        "plan_id_type": "EIN",
                        "plan_id": "11-1111111",
                        "plan_market_type": "group",
                    }
                ],
                "in_network_files": [
                    {"description": "in-network rates", "location": "http://127.0.0.1:9/in.json"}
                ],
            }
        ],
        "version": "1.0.0",
    }
).encode()
INLINE_KEY = re.compile(r"^inline-[0-9a-f]{16}$")
OFFSET = r"(?i)\b(?:byte|offset|position) (\d+)|\b(\d+) (?:\w+ )?bytes?\b"


def settings(**changes: Any) -> TransportSettings:
    values: dict[str, Any] = dict(
        connect_timeout=5.0,
        read_timeout=5.0,
        attempts=3,
        backoff_seconds=0.01,
        remote_concurrency=4,
        remote_timeout=10.0,
    )
    values.update(changes)
    return TransportSettings(**values)


def extract(source: str | Path, out: Path, **kwargs: Any) -> tuple[Any, Path, dict[str, Any]]:
    """Run an extraction; check status.json against result.to_dict(); return both + folder."""
    kwargs.setdefault("network_id", NET)
    options = ExtractionOptions(
        transport=kwargs.pop("settings", settings()),
        **{key: kwargs.pop(key) for key in OPTIONS & set(kwargs)},
    )
    result = run_extraction(str(source), str(out), options, **kwargs)
    folder = out / kwargs["network_id"]
    status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(result.to_dict())) == status
    for key in status:
        assert hasattr(result, key), key
    return result, folder, status


def read_tables(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rates = pq.read_table(folder / "rates.parquet").to_pylist()
    providers = pq.read_table(folder / "providers.parquet").to_pylist()
    return rates, providers


def frozen_rows(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    def freeze(v: Any) -> Any:
        return tuple(freeze(x) for x in v) if isinstance(v, list) else v

    return Counter(tuple((k, freeze(row[k])) for k in sorted(row)) for row in rows)


def assert_tables(folder: Path, expected: oracle.Expected) -> tuple[list[dict[str, Any]], ...]:
    rates, providers = read_tables(folder)
    got_rates, got_providers = oracle.canonical(rates, providers)
    want_rates, want_providers = oracle.canonical(expected.rates, expected.providers)
    assert got_providers - want_providers == Counter(), "unexpected provider rows"
    assert want_providers - got_providers == Counter(), "missing provider rows"
    assert got_rates - want_rates == Counter(), "unexpected rate rows"
    assert want_rates - got_rates == Counter(), "missing rate rows"
    return rates, providers


def assert_success(
    result: Any, status: dict[str, Any], expected: oracle.Expected, kind: str = "success"
) -> None:
    """The status (`success`, or `incomplete`: tables written without some remote groups)."""
    assert result.status == kind, result.error
    assert status["error"] is None
    assert status["items_seen"] == expected.items_seen
    assert status["items_matched"] == expected.items_matched
    assert status["rate_rows"] == len(expected.rates)
    assert status["provider_rows"] == len(expected.providers)
    assert status["unresolved_references"] == expected.unresolved_references
    assert status["file_metadata"] == expected.file_metadata


def assert_failed(result: Any, out: Path, pattern: str) -> str:
    """Failed status with an error matching pattern, and only status.json left in out."""
    assert result.status == "failed"
    assert result.error and re.search(pattern, result.error), result.error
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [f"{NET}/status.json"]
    status = json.loads((out / NET / "status.json").read_text(encoding="utf-8"))
    assert status["status"] == "failed" and status["error"] == result.error
    assert status["output_files"] == {}
    return str(result.error)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- shapes of the document


@pytest.mark.parametrize("position", ["before", "after"])
def test_run_extraction_reference_position(tmp_path: Path, position: str) -> None:
    sf = synth.generate(synth.SynthConfig(seed=11, items=8, refs_position=position))
    path = write(tmp_path, "in.json", sf.to_bytes())
    result, folder, status = extract(path, tmp_path / "out")
    expected = sf.expected(NET)
    assert_success(result, status, expected)
    assert_tables(folder, expected)
    assert status["compression"] == "none"
    assert status["bytes_decoded"] == len(sf.to_bytes())
    assert status["output_files"] and status["whitelist_size"] is None


def test_run_extraction_shuffled_key_order(tmp_path: Path) -> None:
    config = synth.SynthConfig(seed=12, items=8, refs_position="after", shuffle_keys=True)
    sf = synth.generate(config)
    items = sf.document["in_network"]
    assert any(list(i).index("billing_code") > list(i).index("negotiated_rates") for i in items)
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    assert_tables(folder, sf.expected(NET))


def test_run_extraction_float_ids_keep_exact_text(tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=13, items=6, id_style="float", references=5))
    data = sf.to_bytes(pretty=True)
    ids = [str(r["provider_group_id"]) for r in sf.document["provider_references"]]
    assert all(i.endswith("0") and i.encode() in data for i in ids)
    result, folder, status = extract(write(tmp_path, "in.json", data), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    rates, providers = assert_tables(folder, sf.expected(NET))
    assert {p["provider_group_id"] for p in providers} == set(ids)
    assert {k for r in rates for k in r["provider_group_ids"]} == set(ids)


def test_run_extraction_string_ids(tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=14, items=6, id_style="string", dangling_refs=2))
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    expected = sf.expected(NET)
    assert expected.unresolved_references == 2
    assert_success(result, status, expected)
    assert_tables(folder, expected)


@pytest.mark.parametrize("position", ["none", "before"])
def test_run_extraction_inline_groups(tmp_path: Path, position: str) -> None:
    config = synth.SynthConfig(seed=15, items=10, refs_position=position, inline_groups=True)
    sf = synth.generate(config)
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    expected = sf.expected(NET)
    assert_success(result, status, expected)
    rates, providers = assert_tables(folder, expected)
    inline = {p["provider_group_id"] for p in providers if p["source"] == "inline"}
    assert inline and all(INLINE_KEY.match(k) for k in inline)
    oracle_inline = {p["provider_group_id"] for p in expected.providers if p["source"] == "inline"}
    assert len(inline) == len(oracle_inline)  # identical inline lists share one key


def test_run_extraction_references_and_inline_in_one_rate(tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=16, items=10, mixed_rates=True, shuffle_keys=True))
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    rates, _ = assert_tables(folder, sf.expected(NET))
    both = [r["provider_group_ids"] for r in rates if len(r["provider_group_ids"]) > 1]
    both = [ids for ids in both if INLINE_KEY.match(ids[-1])]
    assert both and all(not k.startswith("inline") for ids in both for k in ids[:-1])


@pytest.mark.parametrize("whitelisted", [False, True])
def test_run_extraction_counts_unknown_keys(tmp_path: Path, whitelisted: bool) -> None:
    sf = synth.generate(synth.SynthConfig(seed=17, items=10, unknown_keys=True, arrangements=True))
    whitelist = sf.codes()[:3] if whitelisted else None
    out = tmp_path / "out"
    path = write(tmp_path, "in.json", sf.to_bytes())
    result, folder, status = extract(path, out, cpt_whitelist=whitelist)
    expected = sf.expected(NET, whitelist)
    assert expected.unknown_keys > 0
    assert_success(result, status, expected)
    assert_tables(folder, expected)
    assert status["unknown_keys"] == expected.unknown_keys
    names = {name.rsplit(".", 1)[-1] for name in status["unknown_key_names"]}  # "top.x" -> "x"
    assert names == expected.unknown_key_names


def test_run_extraction_npi_strings_and_tin_only(tmp_path: Path) -> None:
    config = synth.SynthConfig(
        seed=18, items=10, references=6, npi_strings=True, tin_only=True, inline_groups=True
    )
    sf = synth.generate(config)
    data = sf.to_bytes()
    assert b'"npi":[0]' in data and b'"npi":[]' in data and re.search(rb'"npi":\["\d{10}"', data)
    result, folder, status = extract(write(tmp_path, "in.json", data), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    _, providers = assert_tables(folder, sf.expected(NET))
    assert any(p["npi"] == 0 for p in providers)


def test_run_extraction_version_1_bundles_and_capitation(tmp_path: Path) -> None:
    sf = synth.generate(
        synth.SynthConfig(seed=19, items=12, version="1.0.0", arrangements=True, inline_groups=True)
    )
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    rates, _ = assert_tables(folder, sf.expected(NET))
    assert {r["negotiation_arrangement"] for r in rates} == {"ffs", "bundle", "capitation"}
    assert all(r["setting"] is None for r in rates)


# ---------------------------------------------------------------- whitelist


def letter_and_digit_codes(sf: synth.SynthFile) -> tuple[str, str]:
    codes = sf.codes()
    letter = next(c for c in codes if c[0].isalpha())
    digits = next(c for c in codes if c.isdigit() and c != letter)
    return letter, digits


def test_run_extraction_whitelist_iterable_trimmed_and_upper_cased(tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=21, items=12, inline_groups=True))
    letter, digits = letter_and_digit_codes(sf)
    whitelist = [f"  {letter.lower()} ", digits, "00000"]
    result, folder, status = extract(
        write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out", cpt_whitelist=whitelist
    )
    expected = sf.expected(NET, whitelist)
    assert 0 < expected.items_matched < expected.items_seen
    assert_success(result, status, expected)
    assert_tables(folder, expected)
    assert status["whitelist_size"] == 3


@pytest.mark.parametrize("kind", ["txt", "csv"])
def test_run_extraction_whitelist_file(tmp_path: Path, kind: str) -> None:
    sf = synth.generate(synth.SynthConfig(seed=22, items=12))
    letter, digits = letter_and_digit_codes(sf)
    if kind == "txt":
        text = f"# codes for the knee study\n\n{letter.lower()}  \n   \n{digits}\n# end\n"
    else:
        text = f"description,billing_code\nfirst,{letter.lower()}\nsecond, {digits} \n"
    wl = write(tmp_path, f"codes.{kind}", text.encode())
    result, folder, status = extract(
        write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out", cpt_whitelist=str(wl)
    )
    expected = sf.expected(NET, [letter, digits])
    assert_success(result, status, expected)
    assert_tables(folder, expected)
    assert status["whitelist_size"] == 2


# ---------------------------------------------------------------- remote provider references


def serve_remote(server: FileServer, sf: synth.SynthFile, fail: str | None = None) -> None:
    for url, data in sf.remote_bytes().items():
        if url == fail:
            server.add(url, b"gone", status=404)
        else:
            server.add(url, data, delay=0.3)


def overlapping(spans: list[tuple[float, float]]) -> bool:
    return any(b[0] < a[1] for a, b in pairwise(sorted(spans)))


def test_run_extraction_remote_references(http_server: FileServer, tmp_path: Path) -> None:
    config = synth.SynthConfig(
        seed=31,
        items=10,
        references=6,
        remote_base_url=http_server.base_url + "/refs",
        remote_refs=5,
        remote_locations=3,
    )
    sf = synth.generate(config)
    serve_remote(http_server, sf)
    url = http_server.add("/files/in.json", sf.to_bytes())
    result, folder, status = extract(url, tmp_path / "out")
    expected = sf.expected(NET)
    assert len(expected.remote_locations) == 3
    assert_success(result, status, expected)
    _, providers = assert_tables(folder, expected)
    assert {p["source"] for p in providers} == {"file", "remote"}
    assert status["remote_references_fetched"] == 3
    assert status["remote_references_failed"] == 0
    assert [http_server.hits(u) for u in sf.remote_files] == [1, 1, 1]
    spans = [s for u in sf.remote_files for s in http_server.route(u).spans]
    assert overlapping(spans), "remote locations were fetched one after another"


def test_run_extraction_remote_reference_404_is_incomplete(
    http_server: FileServer, tmp_path: Path
) -> None:
    config = synth.SynthConfig(
        seed=32,
        items=8,
        references=4,
        refs_position="after",
        remote_base_url=http_server.base_url + "/refs",
        remote_refs=2,
    )
    sf = synth.generate(config)
    broken = sorted(sf.remote_files)[0]
    serve_remote(http_server, sf, fail=broken)
    url = http_server.add("/files/in.json.gz", containers.pack(sf.to_bytes(), "gz"))
    result, folder, status = extract(url, tmp_path / "out")
    expected = sf.expected(NET, failed_locations={broken})
    assert_success(result, status, expected, kind="incomplete")
    assert_tables(folder, expected)
    assert status["remote_references_failed"] == 1
    assert status["remote_references_fetched"] == 1
    assert http_server.hits(broken) == 1
    name = broken.rsplit("/", 1)[1]
    assert len(status["incomplete"]) == 1, status["incomplete"]
    assert status["incomplete"][0].startswith(
        "1 of 2 remote provider-reference files could not be fetched; their groups have no "
        "provider rows (first: HTTP 404"
    ), status["incomplete"]
    assert name in status["incomplete"][0]
    assert status["warnings"] == []


# ---------------------------------------------------------------- containers and transports

# every container but the one that holds two JSON members (an error, tested elsewhere)
CONTAINERS = [c for c in get_args(containers.Container) if c != "zip-two-json"]
COMPRESSION = {"j": "none", "g": "gzip", "z": "zip"}
SAME_DOC = synth.SynthConfig(seed=41, items=8, inline_groups=True, mixed_rates=True)


@pytest.fixture(scope="module")
def reference_tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Counter[Any], ...]:
    tmp = tmp_path_factory.mktemp("reference")
    sf = synth.generate(SAME_DOC)
    _, folder, _ = extract(write(tmp, "in.json", sf.to_bytes()), tmp / "out")
    rates, providers = read_tables(folder)
    return frozen_rows(rates), frozen_rows(providers)


@pytest.mark.parametrize("transport", ["http", "path", "file-url"])
@pytest.mark.parametrize("container", CONTAINERS)
def test_run_extraction_same_tables_from_every_container(
    http_server: FileServer,
    tmp_path: Path,
    reference_tables: tuple[Counter[Any], ...],
    container: containers.Container,
    transport: str,
) -> None:
    sf = synth.generate(SAME_DOC)
    text = sf.to_bytes(pretty=True, crlf=True) if container == "json-bom" else sf.to_bytes()
    payload = containers.pack(text, container)
    name = "in-network" + containers.SUFFIXES[container]
    path = write(tmp_path, name, payload)
    source = {
        "http": http_server.add("/files/" + name, payload),
        "path": str(path),
        "file-url": path.as_uri(),
    }[transport]
    result, folder, status = extract(source, tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    rates, providers = assert_tables(folder, sf.expected(NET))
    assert (frozen_rows(rates), frozen_rows(providers)) == reference_tables
    assert status["compression"] == COMPRESSION[container[0]]
    assert status["bytes_read"] == len(payload)
    if container != "json-bom":
        assert status["bytes_decoded"] == len(text)


def test_run_extraction_detects_format_from_bytes_not_name(
    http_server: FileServer, tmp_path: Path
) -> None:
    sf = synth.generate(synth.SynthConfig(seed=42, items=5))
    url = http_server.add("/files/looks-plain.json", containers.pack(sf.to_bytes(), "gz-multi"))
    result, folder, status = extract(url, tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    assert_tables(folder, sf.expected(NET))
    assert status["compression"] == "gzip"


@pytest.mark.parametrize("body", ["chunked", "no_length"])
def test_run_extraction_body_without_content_length(
    http_server: FileServer, tmp_path: Path, body: str
) -> None:
    sf = synth.generate(synth.SynthConfig(seed=43, items=6))
    url = http_server.add("/files/in.json.gz", containers.pack(sf.to_bytes(), "gz"), **{body: True})
    result, folder, status = extract(url, tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    assert_tables(folder, sf.expected(NET))


def test_run_extraction_signed_url_query_not_recorded(
    http_server: FileServer, tmp_path: Path
) -> None:
    sf = synth.generate(synth.SynthConfig(seed=44, items=5))
    url = http_server.add("/files/in.json.gz", containers.pack(sf.to_bytes(), "gz"))
    result, folder, status = extract(url + "?Signature=SECRET&Expires=1", tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    assert http_server.route(url).requests == ["/files/in.json.gz?Signature=SECRET&Expires=1"]
    assert status["url"] == url
    assert "SECRET" not in (folder / "status.json").read_text(encoding="utf-8")


def test_run_extraction_small_batches_make_row_groups(tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=45, items=14, inline_groups=True, references=6))
    path = write(tmp_path, "in.json", sf.to_bytes())
    _, big, _ = extract(path, tmp_path / "big")
    result, small, status = extract(
        path, tmp_path / "small", rate_batch_size=7, provider_batch_size=5
    )
    assert_success(result, status, sf.expected(NET))
    for table, batch in (("rates", 7), ("providers", 5)):
        meta = pq.ParquetFile(small / f"{table}.parquet").metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert meta.num_row_groups > 1 and max(sizes) <= batch, sizes
    big_rates, big_providers = read_tables(big)
    small_rates, small_providers = read_tables(small)
    assert frozen_rows(small_rates) == frozen_rows(big_rates)
    assert frozen_rows(small_providers) == frozen_rows(big_providers)


@pytest.mark.parametrize("large_bytes", [0, None])
@pytest.mark.parametrize("rows", [1, 2, 3])
def test_run_extraction_large_items_in_batches_of_rows(
    tmp_path: Path, rows: int, large_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A matched item's rows reach the writer a few rates at a time (rates.ROWS_PER_BATCH);
    here a batch is a rate or two, so every item is cut, also between inline groups. With
    LARGE_ITEM_BYTES 0 every item is a LargeItem, its rates decoded as they are read."""
    monkeypatch.setattr(rates_module, "ROWS_PER_BATCH", rows)
    if large_bytes is not None:
        monkeypatch.setattr(items_module, "LARGE_ITEM_BYTES", large_bytes)
    sf = synth.generate(synth.SynthConfig(seed=46, items=10, inline_groups=True, references=6))
    prices = [
        sum(len(r["negotiated_prices"]) for r in i["negotiated_rates"])
        for i in sf.document["in_network"]
    ]
    assert max(prices) > 2 * rows
    result, folder, status = extract(write(tmp_path, "in.json", sf.to_bytes()), tmp_path / "out")
    assert_success(result, status, sf.expected(NET))
    assert_tables(folder, sf.expected(NET))


# ---------------------------------------------------------------- errors


def doc_bytes(seed: int = 51, **knobs: Any) -> bytes:
    return synth.generate(synth.SynthConfig(seed=seed, items=12, **knobs)).to_bytes()


def test_run_extraction_truncated_gzip(tmp_path: Path) -> None:
    gz = containers.pack(doc_bytes(), "gz")
    path = write(tmp_path, "in.json.gz", gz[: len(gz) // 2])
    result, _, _ = extract(path, tmp_path / "out")
    error = assert_failed(result, tmp_path / "out", r"(?i)gzip|truncat")
    offset = re.search(OFFSET, error)
    assert offset and int(offset.group(1) or offset.group(2)) == len(gz) // 2, error


def corrupt_gzip(gz: bytes, where: str) -> bytes:
    """gz with a deflate error ("block-type", "body") or a wrong CRC-32 trailer ("crc")."""
    if where == "block-type":  # first block header -> reserved BTYPE 11 (RFC 1951, 3.2.3)
        return gz[:10] + bytes([gz[10] | 0b110]) + gz[11:]
    if where == "crc":
        return gz[:-8] + bytes(b ^ 0xFF for b in gz[-8:-4]) + gz[-4:]
    for at in range(len(gz) // 2, len(gz) - 8):  # first flip past the middle that inflate sees
        broken = gz[:at] + bytes(b ^ 0xFF for b in gz[at : at + 4]) + gz[at + 4 :]
        try:
            zlib.decompress(broken, wbits=31)
        except zlib.error as exc:
            if "incorrect data check" not in str(exc):
                return broken
    raise AssertionError("no corrupting flip found")


@pytest.mark.parametrize("where", ["block-type", "body", "crc"])
def test_run_extraction_corrupt_gzip(tmp_path: Path, where: str) -> None:
    gz = corrupt_gzip(containers.pack(doc_bytes(), "gz"), where)
    with pytest.raises(zlib.error):
        zlib.decompress(gz, wbits=31)
    result, _, _ = extract(write(tmp_path, "in.json.gz", gz), tmp_path / "out")
    assert_failed(result, tmp_path / "out", r"(?i)corrupt|gzip|deflate|crc")


def test_run_extraction_invalid_json_in_the_middle(tmp_path: Path) -> None:
    data = doc_bytes()
    at = data.index(b'"negotiated_prices":', len(data) // 2) + len(b'"negotiated_prices"')
    broken = data[:at] + b";" + data[at + 1 :]
    result, _, _ = extract(write(tmp_path, "in.json", broken), tmp_path / "out")
    error = assert_failed(result, tmp_path / "out", r"(?i)json|pars|invalid|unexpected")
    offset = re.search(OFFSET, error)
    assert offset, error
    assert abs(int(offset.group(1) or offset.group(2)) - at) <= 16, (at, error)


@pytest.mark.parametrize("container", ["json", "gz"])
def test_run_extraction_json_ends_early(tmp_path: Path, container: containers.Container) -> None:
    data = doc_bytes()
    payload = containers.pack(data[: len(data) * 3 // 5], container)
    path = write(tmp_path, "in" + containers.SUFFIXES[container], payload)
    result, _, _ = extract(path, tmp_path / "out")
    pattern = r"(?i)truncat|incomplete|unexpected end|premature|end of (file|input|data)|early"
    assert_failed(result, tmp_path / "out", pattern)


def test_run_extraction_empty_file(tmp_path: Path) -> None:
    result, _, _ = extract(write(tmp_path, "in.json", b""), tmp_path / "out")
    assert_failed(result, tmp_path / "out", r"(?i)empty|no data|0 bytes")


@pytest.mark.parametrize("code", [403, 404])
def test_run_extraction_http_client_error_not_retried(
    http_server: FileServer, tmp_path: Path, code: int
) -> None:
    url = http_server.add("/files/in.json.gz", b"x", status=code)
    result, _, _ = extract(url + "?Signature=SECRET", tmp_path / "out")
    error = assert_failed(result, tmp_path / "out", rf"\b{code}\b")
    assert "127.0.0.1" in error and "SECRET" not in error
    assert http_server.hits(url) == 1


def test_run_extraction_retries_503_then_succeeds(http_server: FileServer, tmp_path: Path) -> None:
    sf = synth.generate(synth.SynthConfig(seed=52, items=5))
    url = http_server.add("/files/in.json.gz", containers.pack(sf.to_bytes(), "gz"), fail_first=2)
    result, folder, status = extract(url, tmp_path / "out", settings=settings(attempts=3))
    assert_success(result, status, sf.expected(NET))
    assert_tables(folder, sf.expected(NET))
    assert http_server.hits(url) == 3


def test_run_extraction_500_fails_after_attempts(http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.add("/files/in.json.gz", b"x", status=500)
    result, _, _ = extract(url, tmp_path / "out", settings=settings(attempts=3))
    assert_failed(result, tmp_path / "out", r"\b500\b")
    assert http_server.hits(url) == 3


def test_run_extraction_connection_closed_early(http_server: FileServer, tmp_path: Path) -> None:
    data = containers.pack(doc_bytes(), "gz")
    url = http_server.add("/files/in.json.gz", data, close_after=len(data) // 2)
    result, _, _ = extract(url, tmp_path / "out", settings=settings(attempts=1))
    pattern = r"(?i)clos|incomplete|short|fewer|truncat|premature|ended|Content-Length"
    assert_failed(result, tmp_path / "out", pattern)


def test_run_extraction_missing_whitelist_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-codes.txt"
    path = write(tmp_path, "in.json", doc_bytes())
    result, _, _ = extract(path, tmp_path / "out", cpt_whitelist=str(missing))
    assert_failed(result, tmp_path / "out", re.escape(str(missing)))


def test_run_extraction_zip_with_two_json_members(tmp_path: Path) -> None:
    path = write(tmp_path, "in.zip", containers.pack(doc_bytes(), "zip-two-json"))
    result, _, _ = extract(path, tmp_path / "out")
    assert_failed(result, tmp_path / "out", r"(?s)(?=.*a-rates\.json)(?=.*b-rates\.json)")


def test_run_extraction_table_of_contents_is_rejected(
    http_server: FileServer, tmp_path: Path
) -> None:
    url = http_server.add("/files/index.json", TOC)
    result, _, _ = extract(url, tmp_path / "out")
    assert_failed(result, tmp_path / "out", r"(?i)table[ _-]of[ _-]contents|reporting_structure")


def test_run_extraction_failure_removes_earlier_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result, folder, _ = extract(write(tmp_path, "good.json", doc_bytes()), out)
    assert result.status == "success" and (folder / "rates.parquet").exists()
    result, _, _ = extract(write(tmp_path, "bad.json", b""), out)
    assert_failed(result, out, r"(?i)empty|no data|0 bytes")
