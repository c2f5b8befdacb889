"""run_extraction as a function and as a command: errors, exit codes, memory."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mrfbatch.cli import extract_main as main
from mrfbatch.errors import UsageError
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.whitelist import CODES_COUNTED
from support import oracle, synth

PRICE = (
    '{"negotiated_type": "negotiated", "negotiated_rate": 10.5, '
    '"expiration_date": "9999-12-31", "billing_class": "professional"}'
)


def item(code: str, ref: int = 1) -> str:
    return (
        f'{{"negotiation_arrangement": "ffs", "name": "n", "billing_code_type": "CPT", '
        f'"billing_code_type_version": "2024", "billing_code": "{code}", "description": "d", '
        f'"negotiated_rates": [{{"provider_references": [{ref}], '
        f'"negotiated_prices": [{PRICE}]}}]}}'
    )


REFS = (
    '[{"provider_group_id": 1, "provider_groups": [{"npi": [1234567890], '
    '"tin": {"type": "ein", "value": "12-3456789"}}]}]'
)


def document(items: list[str]) -> str:
    return (
        '{"reporting_entity_name": "e", "reporting_entity_type": "t", "version": "1.0.0", '
        f'"last_updated_on": "2024-01-01", "provider_references": {REFS}, '
        f'"in_network": [{", ".join(items)}]}}'
    )


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def command(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m mrfbatch.run_extraction ARGS` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "mrfbatch.run_extraction", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_run_extraction_invalid_json_gives_exact_offset(tmp_path: Path) -> None:
    good = document([item("99213")] * 200)
    at = good.index('"negotiated_type":', 5000) + len('"negotiated_type"')
    broken = good[:at] + "@" + good[at + 1 :]
    path = write(tmp_path, "broken.json", broken)
    result = run_extraction(str(path), tmp_path / "out")
    assert result.status == "failed"
    assert result.error is not None
    assert "invalid JSON" in result.error and f"at decoded byte {at}:" in result.error
    assert outputs(tmp_path / "out" / "broken") == ["status.json"]


def test_run_extraction_invalid_json_near_start_gives_exact_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "start.json", '{"in_network": [x]}')
    result = run_extraction(str(path), tmp_path / "out")
    assert result.error is not None and "at decoded byte 16:" in result.error


def test_run_extraction_truncated_json_says_where(tmp_path: Path) -> None:
    text = document([item("99213")] * 20)
    path = write(tmp_path, "cut.json.gz", gzip.compress(text[:1234].encode()))
    result = run_extraction(str(path), tmp_path / "out")
    assert result.status == "failed"
    assert result.error is not None
    assert "ends early after 1234 decoded bytes" in result.error
    assert result.bytes_decoded == 1234
    assert outputs(tmp_path / "out" / "cut") == ["status.json"]


def test_run_extraction_html_error_page_is_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, "page.json", "<html><body>Access denied</body></html>")
    result = run_extraction(str(path), tmp_path / "out")
    assert result.error is not None
    assert "page.json: the file is an HTML page, not JSON" in result.error
    assert "(first bytes: '<html><body>Access denied</body></html>')" in result.error
    assert result.retryable is False


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[1, 2]", r"top level of the JSON is an array"),
        ('{"version": "1.0.0"}', r"no `in_network` array .*top-level keys: version"),
        ('{"in_network": {"a": 1}}', r"`in_network` is dict; expected an array"),
        ('{"provider_groups": [], "version": "1.0.0"}', r"provider-reference file"),
    ],
)
def test_run_extraction_rejects_other_shapes(tmp_path: Path, text: str, pattern: str) -> None:
    result = run_extraction(str(write(tmp_path, "x.json", text)), tmp_path / "out")
    assert result.status == "failed"
    assert result.error is not None
    assert result.rate_rows == 0
    assert re.search(pattern, result.error), result.error


def test_run_extraction_replaces_stale_outputs_on_failure(tmp_path: Path) -> None:
    path = write(tmp_path, "net.json", document([item("99213")]))
    assert run_extraction(str(path), tmp_path / "out").status == "success"
    assert outputs(tmp_path / "out" / "net") == [
        "providers.parquet",
        "rates.parquet",
        "status.json",
    ]
    path.write_text(document([item("99213")])[:-10])
    assert run_extraction(str(path), tmp_path / "out").status == "failed"
    assert outputs(tmp_path / "out" / "net") == ["status.json"]


def test_run_extraction_removes_the_tables_of_the_other_format(tmp_path: Path) -> None:
    """A folder never holds tables of two formats: the older ones would look current."""
    path = write(tmp_path, "net.json", document([item("99213")]))
    folder = tmp_path / "out" / "net"
    csv = ExtractionOptions(output_format="csv")
    assert run_extraction(str(path), tmp_path / "out").status == "success"
    assert run_extraction(str(path), tmp_path / "out", csv).status == "success"
    assert outputs(folder) == ["providers.csv", "rates.csv", "status.json"]
    assert run_extraction(str(path), tmp_path / "out").status == "success"
    assert outputs(folder) == ["providers.parquet", "rates.parquet", "status.json"]
    path.write_text(document([item("99213")])[:-10])  # a failure leaves no table of either
    assert run_extraction(str(path), tmp_path / "out", csv).status == "failed"
    assert outputs(folder) == ["status.json"]


def test_run_extraction_refuses_pure_python_ijson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ijson.backends.yajl2_c", None)
    path = write(tmp_path, "net.json", document([item("99213")]))
    result = run_extraction(str(path), tmp_path / "out", ExtractionOptions(engine="reference"))
    assert result.status == "failed"
    assert result.error is not None
    assert "yajl2_c" in result.error and "pip install" in result.error


def test_run_extraction_whitelist_counts_and_status_file(tmp_path: Path) -> None:
    path = write(tmp_path, "net.json", document([item("99213"), item(" 27447 "), item("j1234")]))
    plans = [{"plan_name": "A", "plan_id": "1"}]
    result = run_extraction(
        str(path), tmp_path / "out", cpt_whitelist=["27447", "J1234"], plan_metadata=plans
    )
    assert (result.status, result.items_seen, result.items_matched, result.rate_rows) == (
        "success",
        3,
        2,
        2,
    )
    status = json.loads((tmp_path / "out" / "net" / "status.json").read_text())
    assert status == result.to_dict()
    assert status["plan_metadata"] == plans
    assert status["whitelist_size"] == 2
    assert status["file_metadata"]["reporting_entity_name"] == "e"
    rates = pq.read_table(tmp_path / "out" / "net" / "rates.parquet").to_pylist()
    assert sorted(r["billing_code"] for r in rates) == [" 27447 ", "j1234"]


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_run_extraction_status_counts_the_items_of_each_code(tmp_path: Path, engine: str) -> None:
    items = [item("99213"), item(" 27447 "), item("j1234"), item("27447"), item("27447")]
    path = write(tmp_path, "net.json", document(items))
    options = ExtractionOptions(engine=engine)
    whitelist = ["27447", "J1234", "0450"]
    result = run_extraction(str(path), tmp_path / "out", options, cpt_whitelist=whitelist)
    assert result.matched_codes == {"27447": 3, "J1234": 1}  # normalized; 0450 in no item
    status = json.loads((tmp_path / "out" / "net" / "status.json").read_text())
    assert status["matched_codes"] == {"27447": 3, "J1234": 1}
    assert run_extraction(str(path), tmp_path / "all", options).matched_codes is None


def test_run_extraction_counts_codes_of_a_whitelist_up_to_its_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "net.json", document([item("27447")]))
    most = ["27447", *(f"C{i}" for i in range(CODES_COUNTED - 1))]
    result = run_extraction(str(path), tmp_path / "most", cpt_whitelist=most)
    assert result.matched_codes == {"27447": 1}
    result = run_extraction(str(path), tmp_path / "more", cpt_whitelist=[*most, "C-extra"])
    assert (result.items_matched, result.matched_codes) == (1, None)


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", document([item("99213")]))
    out = str(tmp_path / "out")
    assert main(["--url", str(good), "--output-dir", out, "-q"]) == 0
    assert main(["--url", str(tmp_path / "missing.json"), "--output-dir", out, "-q"]) == 1
    status = json.loads((tmp_path / "out" / "missing" / "status.json").read_text())
    assert status["status"] == "failed" and "does not exist" in status["error"]
    for bad in (
        ["--output-dir", out],
        ["--url", str(good), "--output-dir", out, "--rate-batch-size", "0"],
        ["--url", str(good), "--output-dir", out, "--format", "xlsx"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2


@pytest.mark.parametrize(
    ("network_id", "problem"),
    [
        ("../evil", "must start with a letter or digit"),
        ("/tmp/evil", "must start with a letter or digit"),
        ("..", "must start with a letter or digit"),
        ("a/../../evil", "must start with a letter or digit"),
        ("", "must start with a letter or digit"),
        ("CON", "is a device name Windows reserves"),
        ("tasks.tsv", "is the name of a file a run keeps in output_dir"),
    ],
)
def test_run_extraction_unsafe_network_id_is_refused_before_writing(
    tmp_path: Path, network_id: str, problem: str
) -> None:
    good = write(tmp_path, "input.json", document([item("99213")]))
    out = tmp_path / "deep" / "out"
    with pytest.raises(UsageError, match=rf"is not a safe folder name: it {problem}"):
        run_extraction(str(good), out, network_id=network_id)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["input.json"]


def test_main_unsafe_network_id_exits_2_without_a_traceback(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", document([item("99213")]))
    proc = command(
        "--url", str(good), "--output-dir", str(tmp_path / "out"), "--network-id", "../../evil"
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: network id '../../evil' is not a safe folder name: it must start with a letter "
        "or digit and hold only letters, digits, '.', '_' and '-'\n"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["good.json"]


def test_main_missing_whitelist_fails_with_status(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", document([item("99213")]))
    code = main(
        ["--url", str(good), "--output-dir", str(tmp_path), "--cpt-whitelist", "nope.txt", "-q"]
    )
    assert code == 1
    status = json.loads((tmp_path / "good" / "status.json").read_text())
    assert "whitelist file nope.txt does not exist" in status["error"]


def test_module_runs_as_a_command(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", document([item("99213")]))
    proc = command("--url", good.as_uri(), "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "good: success, 1 items matched of 1, 1 rate rows, 1 provider rows" in proc.stderr


_RSS_SCRIPT = """
import resource, sys
from mrfbatch.run_extraction import run_extraction
r = run_extraction(sys.argv[1], sys.argv[2], cpt_whitelist=["00000"])
assert r.status == "success", r.error
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _big_document(path: Path, refs: int) -> None:
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write('{"version": "1.0.0", "provider_references": [')
        for i in range(refs):
            f.write(
                ("," if i else "")
                + f'{{"provider_group_id": {i}, "provider_groups": [{{"npi": [{1000000000 + i}, '
                f'{1100000000 + i}], "tin": {{"type": "ein", "value": "{i:09d}"}}}}]}}'
            )
        f.write('], "in_network": [' + item("99213", 5) + "]}")


@pytest.mark.slow
def test_run_extraction_memory_does_not_grow_with_provider_references(tmp_path: Path) -> None:
    """Groups seen before in_network go to disk: 4x the references, about the same RSS."""
    peaks = []
    for refs in (50_000, 200_000):
        path = tmp_path / f"refs{refs}.json.gz"
        _big_document(path, refs)
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(path), str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        peaks.append(int(proc.stdout.split()[-1]))
    small, large = peaks
    assert large < small * 1.3 + 20_000, f"peak RSS {small} KiB -> {large} KiB"


def test_bundled_example_is_reproducible_and_extracts_as_generated(tmp_path: Path) -> None:
    checkout = Path(__file__).resolve().parents[1]
    root = checkout / "examples"
    made = tmp_path / "in-network-sample.json.gz"
    args = ["--seed", "7", "--items", "40", "--references", "12", "--variety", "--pretty"]
    command = [sys.executable, "-m", "tests.support.synth", str(made), *args]  # examples/README
    proc = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert made.read_bytes() == (root / "in-network-sample.json.gz").read_bytes()

    result = run_extraction(str(made), tmp_path / "out", cpt_whitelist=root / "codes.txt")
    assert result.status == "success", result.error
    config = synth.parse_command([str(made), *args]).config
    expected = synth.generate(config).expected("in-network-sample", {"27447", "99213", "J1885"})
    folder = tmp_path / "out" / "in-network-sample"
    rates = pq.read_table(folder / "rates.parquet").to_pylist()
    providers = pq.read_table(folder / "providers.parquet").to_pylist()
    assert len(rates) == len(expected.rates) > 0
    assert oracle.canonical(rates, providers) == oracle.canonical(
        expected.rates, expected.providers
    )


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/a b.json?sig=SECRET9", "the URL contains a space (encode it as %20)"),
        ("/\u00e9t\u00e9.json?sig=SECRET9", "the URL contains the non-ASCII character '\u00e9'"),
        ("/x.json?sig=SECRET9&a=\x01", "the URL contains a tab, newline or control character"),
    ],
)
def test_run_extraction_url_that_cannot_be_requested(
    http_server: Any, tmp_path: Path, target: str, reason: str
) -> None:
    """http.client refuses such a request target with ValueError: a plain failure, no retry."""
    url = http_server.add("/x.json", b"{}").rsplit("/", 1)[0] + target
    result = run_extraction(url, tmp_path, network_id="bad")
    assert result.status == "failed" and result.error is not None
    assert "cannot be requested" in result.error and reason in result.error, result.error
    assert result.retries == 0 and http_server.hits("/x.json") == 0
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"SECRET9" not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:99999/x.json", "its port is not a number from 0 to 65535"),
        ("http://a..b/x.json", "has a host name that is not a valid (internationalized) domain"),
        ("http:///x.json", "the URL has no host name"),
    ],
)
def test_run_extraction_url_with_a_bad_host_or_port(tmp_path: Path, url: str, reason: str) -> None:
    result = run_extraction(url, tmp_path, network_id="bad")
    assert result.status == "failed" and result.error is not None
    assert "cannot be requested" in result.error and reason in result.error, result.error


def test_cli_validate_full_checks_the_items_it_skips(tmp_path: Path) -> None:
    """A literal no parser accepts (`tru`), inside an item the whitelist skips: structural
    validation (the default) does not read it, `--validate full` fails at its byte."""
    skipped = b'{"billing_code":"2","negotiated_rates":[tru]}'
    wanted = b'{"billing_code":"1","negotiated_rates":[]}'
    data = b'{"in_network":[' + wanted + b"," + skipped + b"]}"
    path = tmp_path / "f.json"
    path.write_bytes(data)
    (tmp_path / "codes.txt").write_text("1\n", encoding="utf-8")
    common = ["--url", str(path), "--cpt-whitelist", str(tmp_path / "codes.txt"), "--quiet"]
    assert main([*common, "--output-dir", str(tmp_path / "a")]) == 0
    assert main([*common, "--output-dir", str(tmp_path / "b"), "--validate", "full"]) == 1
    status = json.loads((tmp_path / "b" / "f" / "status.json").read_text(encoding="utf-8"))
    bad = data.index(b"tru]") + 3  # where `e` should be
    assert f"at decoded byte {bad}: invalid literal" in status["error"], status["error"]
