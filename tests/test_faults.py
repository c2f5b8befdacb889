"""Transport faults against the real test server: resumes, retries, restarts, early ends.

Each fault is scripted on tests/support/httpserver.py (connections dropped or stalled at file
offsets, 503 with Retry-After, a server that ignores Range, a file that changes mid-transfer).
Tables are compared with the generator's oracle (`SynthFile.expected`) and, row for row, with a
clean extraction of the same bytes from a local file; `retries`, `resumes` and `restarts` in
status.json with the counts the fault script implies. Every URL is signed-looking, and no secret
of it may reach the outputs or the log.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mrfbatch.engines.fast import FastEngine
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.status import ExtractionResult
from mrfbatch.transport import TransportSettings
from support import oracle, synth
from support.httpserver import FileServer

NET = "faultnet"
WHITELIST = {"99213", "27447", "J1885"}
SIGNATURE = "?X-Amz-Signature=SECRETc0ffee5eed&Key-Pair-Id=KPSECRET42&X-Amz-Expires=60"
SECRETS = (b"SECRETc0ffee5eed", b"KPSECRET42", b"X-Amz-Signature")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Doc:
    """A generated in-network file, gzipped, and what a clean extraction of it gives."""

    sf: synth.SynthFile
    payload: bytes
    rates: list[str]  # rows of a clean extraction from a local file, sorted (JSON text)
    providers: list[str]


def make_doc(tmp: Path, config: synth.SynthConfig, level: int = 6) -> Doc:
    sf = synth.generate(config)
    payload = gzip.compress(sf.to_bytes(), compresslevel=level, mtime=0)
    path = tmp / f"clean-{config.seed}.json.gz"
    path.write_bytes(payload)
    result = run_extraction(str(path), tmp / "clean", network_id=NET, cpt_whitelist=WHITELIST)
    assert result.status == "success", result.error
    rates, providers = read_tables(tmp / "clean" / NET)
    expected = sf.expected(NET, WHITELIST)
    assert oracle.canonical(rates, providers) == oracle.canonical(
        expected.rates, expected.providers
    )
    return Doc(sf, payload, sorted_rows(rates), sorted_rows(providers))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """About 40 KB of gzip."""
    config = synth.SynthConfig(seed=61, items=300, references=200, inline_groups=True)
    return make_doc(tmp_path_factory.mktemp("small"), config)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """Another file, larger than `small`: the new version of a file that changes."""
    config = synth.SynthConfig(seed=62, items=400, references=250, refs_position="after")
    return make_doc(tmp_path_factory.mktemp("other"), config)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """Several MB of gzip (compressed fast, as a payer's export would be)."""
    config = synth.SynthConfig(seed=63, items=16_000, references=16_000)
    return make_doc(tmp_path_factory.mktemp("big"), config, level=1)


def settings(**changes: Any) -> TransportSettings:
    values: dict[str, Any] = dict(
        connect_timeout=5.0,
        read_timeout=5.0,
        attempts=4,
        backoff_seconds=0.05,
        retry_seconds=30.0,
        stalled_resumes=5,
        restarts=2,
        remote_timeout=5.0,
    )
    values.update(changes)
    return TransportSettings(**values)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Everything mrfbatch logs during the test, down to DEBUG, in a file under tmp_path."""
    path = tmp_path / "extract.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("mrfbatch")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)


def extract(
    url: str, tmp_path: Path, log_file: Path, **kwargs: Any
) -> tuple[ExtractionResult, dict[str, Any], Path]:
    """Extract the signed `url` into tmp_path/out; check that no secret was written anywhere."""
    options = ExtractionOptions(transport=kwargs.pop("settings", settings()), **kwargs)
    out = tmp_path / "out"
    result = run_extraction(url + SIGNATURE, out, options, network_id=NET, cpt_whitelist=WHITELIST)
    folder = out / NET
    status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    assert status == json.loads(json.dumps(result.to_dict()))
    assert_no_secret(tmp_path)
    return result, status, folder


def assert_no_secret(root: Path, allowed: tuple[str, ...] = ()) -> None:
    files = [p for p in root.rglob("*") if p.is_file() and p.name not in allowed]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret not in data, f"{secret!r} written to {path}"


def read_tables(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rates = pq.read_table(folder / "rates.parquet").to_pylist()
    providers = pq.read_table(folder / "providers.parquet").to_pylist()
    return rates, providers


def sorted_rows(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def assert_same_tables(folder: Path, doc: Doc) -> None:
    """The tables equal a clean extraction of `doc`, row for row (and so its oracle)."""
    assert sorted(p.name for p in folder.iterdir()) == [
        "providers.parquet",
        "rates.parquet",
        "status.json",
    ]
    rates, providers = read_tables(folder)
    assert len(rates) == len(doc.rates) > 0
    assert sorted_rows(rates) == doc.rates
    assert sorted_rows(providers) == doc.providers


def assert_failed(status: dict[str, Any], folder: Path, *phrases: str) -> str:
    """Failed, saying each phrase, with nothing but status.json left in the folder."""
    assert status["status"] == "failed"
    error: str = status["error"]
    for phrase in phrases:
        assert phrase in error, error
    assert sorted(p.name for p in folder.iterdir()) == ["status.json"]
    assert status["output_files"] == {}
    return error


def counts(status: dict[str, Any]) -> tuple[int, int, int]:
    return status["retries"], status["resumes"], status["restarts"]


def gaps(server: FileServer, url: str) -> list[float]:
    """Seconds between the end of each request and the start of the next."""
    spans = server.route(url).spans
    return [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]


# ---------------------------------------------------------------- resumes


ENGINES = pytest.mark.parametrize(
    ("engine", "threads"), [("fast", 1), ("fast", 2), ("reference", 1)], ids=str
)


def small_chunks(engine: str, threads: int = 1) -> str | FastEngine:
    """The engine, reading 64 KB at a time (the fast one's default, 8 MB, holds all of
    `small`): items are matched and rows made before a break near the end of the file."""
    return FastEngine(chunk_size=1 << 16, threads=threads) if engine == "fast" else engine


def discarded_items(log: str) -> int:
    found = re.search(r"restart 1 of 2: the (\d+) items matched so far are discarded", log)
    assert found, log
    return int(found.group(1))


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@ENGINES
def test_run_extraction_resumes_where_the_connection_dropped(
    http_server: FileServer,
    tmp_path: Path,
    log_file: Path,
    small: Doc,
    engine: str,
    threads: int,
    reset: bool,
) -> None:
    size = len(small.payload)
    drops = [7, size // 3, size // 3 + 1, size - 10]
    url = http_server.add(
        "/mrf/in.json.gz", small.payload, etag='"v1"', ranges=True, drop_at=list(drops), reset=reset
    )
    result, status, folder = extract(url, tmp_path, log_file, engine=engine, threads=threads)
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (0, 4, 0)
    assert status["bytes_read"] == size
    route = http_server.route(url)
    assert route.statuses == [200, 206, 206, 206, 206]
    assert route.range_headers[0] == (None, None)
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r, _ in route.range_headers[1:]]
    if reset:  # a reset may throw away what the server had not sent yet
        assert all(s <= d for s, d in zip(starts, drops, strict=True)) and starts == sorted(starts)
    else:
        assert starts == drops
    assert {validator for _, validator in route.range_headers[1:]} == {'"v1"'}
    assert log_file.read_text().count("resuming from byte") == 4


@pytest.mark.slow  # making the 2.4 MB file takes about 10 s
def test_run_extraction_survives_many_drops_in_a_multi_mb_gzip(
    http_server: FileServer, tmp_path: Path, log_file: Path, big: Doc
) -> None:
    size = len(big.payload)
    assert size > 2_000_000
    drops = [size * i // 13 + 17 * i for i in range(1, 13)]  # 12, all over the file
    url = http_server.add(
        "/mrf/big.json.gz",
        big.payload,
        etag='"big-1"',
        last_modified="Wed, 01 May 2024 00:00:00 GMT",
        ranges=True,
        drop_at=list(drops),
        reset=False,
    )
    result, status, folder = extract(url, tmp_path, log_file, threads=2)
    assert result.status == "success", result.error
    assert_same_tables(folder, big)
    assert counts(status) == (0, 12, 0)
    assert status["bytes_read"] == size
    assert http_server.hits(url) == 13


def test_run_extraction_resumes_after_a_stall(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    at = len(small.payload) // 2
    url = http_server.add(
        "/mrf/in.json.gz",
        small.payload,
        last_modified="Wed, 01 May 2024 00:00:00 GMT",  # no ETag: Last-Modified guards
        ranges=True,
        stall_at=[at],
        stall_seconds=6.0,
    )
    started = time.monotonic()
    result, status, folder = extract(url, tmp_path, log_file, settings=settings(read_timeout=1.0))
    elapsed = time.monotonic() - started
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (0, 1, 0)
    assert 1.0 <= elapsed < 5.0
    route = http_server.route(url)
    assert route.range_headers[1] == (f"bytes={at}-", "Wed, 01 May 2024 00:00:00 GMT")
    assert "timed out" in log_file.read_text()


def test_run_extraction_retries_a_failed_resume(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    url = http_server.add(
        "/mrf/in.json.gz",
        small.payload,
        etag='"v1"',
        ranges=True,
        drop_at=[1000],
        fail_hits=(2, 3),  # the first two tries of the resume get 503
        retry_after="0",
    )
    result, status, folder = extract(url, tmp_path, log_file)
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (2, 1, 0)
    assert http_server.route(url).statuses == [200, 503, 503, 206]


def test_run_extraction_resume_refused_fails_with_both_reasons(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    """The signature expired while the file was downloading: 403 is final, not retried."""
    url = http_server.add(
        "/mrf/in.json.gz",
        small.payload,
        etag='"v1"',
        ranges=True,
        drop_at=[1000],
        fail_hits=(2,),
        fail_status=403,
    )
    result, status, folder = extract(url, tmp_path, log_file)
    assert_failed(
        status,
        folder,
        "1000 of",
        "resuming failed: HTTP 403 Forbidden from host 127.0.0.1 for http://127.0.0.1:",
    )
    assert counts(status) == (0, 0, 0)
    assert http_server.hits(url) == 2


def test_run_extraction_gives_up_when_resumes_bring_nothing(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    """Every answer stops at the same byte, short of its Content-Length."""
    at = len(small.payload) // 2
    url = http_server.add(
        "/mrf/in.json.gz", small.payload, etag='"v1"', ranges=True, close_after=at
    )
    result, status, folder = extract(url, tmp_path, log_file, settings=settings(stalled_resumes=3))
    assert_failed(
        status,
        folder,
        f"{at} of {len(small.payload)} bytes announced by Content-Length",
        "gave up after 3 resumes in a row that brought no new bytes",
        "/mrf/in.json.gz",
    )
    assert counts(status) == (0, 3, 0)
    assert http_server.hits(url) == 4


# ---------------------------------------------------------------- restarts from zero


@pytest.mark.parametrize("change", ["if-range", "etag", "length"])
def test_run_extraction_restarts_when_the_file_changes(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc, other: Doc, change: str
) -> None:
    """The file is replaced after the first request: the tables are the new file's only."""
    assert len(other.payload) > len(small.payload)
    validators: dict[str, Any] = {
        "if-range": dict(etag='"v1"', replacement_etag='"v2"'),  # If-Range fails: 200
        "etag": dict(etag='"v1"', replacement_etag='"v2"', if_range=False),  # 206, new ETag
        "length": dict(last_modified="Wed, 01 May 2024 00:00:00 GMT", if_range=False),
    }[change]  # length: 206 with the same Last-Modified but another total in Content-Range
    url = http_server.add(
        "/mrf/in.json.gz",
        small.payload,
        ranges=True,
        drop_at=[len(small.payload) * 9 // 10],
        replace_after=1,
        replacement=other.payload,
        **validators,
    )
    result, status, folder = extract(
        url, tmp_path, log_file, engine=small_chunks("fast"), rate_batch_size=10
    )
    assert result.status == "success", result.error
    assert_same_tables(folder, other)  # not one row of the old file
    assert counts(status) == (0, 0, 1)
    assert status["bytes_read"] == len(other.payload)
    statuses = http_server.route(url).statuses
    assert statuses == [200, 200 if change == "if-range" else 206, 200]
    log = log_file.read_text()
    assert "has changed" in log
    assert discarded_items(log) > 0


@ENGINES
def test_run_extraction_restarts_when_the_server_ignores_range(
    http_server: FileServer,
    tmp_path: Path,
    log_file: Path,
    small: Doc,
    engine: str,
    threads: int,
) -> None:
    """Near the end, so items were matched and rows made before the restart."""
    at = len(small.payload) - 100
    url = http_server.add("/mrf/in.json.gz", small.payload, etag='"v1"', ranges=False, drop_at=[at])
    result, status, folder = extract(
        url, tmp_path, log_file, engine=small_chunks(engine, threads), rate_batch_size=10
    )
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (0, 0, 1)
    route = http_server.route(url)
    assert route.statuses == [200, 200, 200]
    assert [r for r, _ in route.range_headers] == [None, f"bytes={at}-", None]
    log = log_file.read_text()
    assert "ignores Range requests" in log
    assert discarded_items(log) > 0


def test_run_extraction_restarts_without_a_validator(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    """No ETag and no Last-Modified: a resume could join two versions, so start over."""
    url = http_server.add("/mrf/in.json.gz", small.payload, ranges=True, drop_at=[5000])
    result, status, folder = extract(url, tmp_path, log_file)
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (0, 0, 1)
    assert http_server.route(url).range_headers == [(None, None), (None, None)]


@pytest.mark.parametrize(
    ("restarts", "words"),
    [(1, "gave up after 1 restart from the start"), (2, "gave up after 2 restarts from the start")],
)
def test_run_extraction_gives_up_after_restarts(
    http_server: FileServer,
    tmp_path: Path,
    log_file: Path,
    small: Doc,
    restarts: int,
    words: str,
) -> None:
    """Each pass breaks; the refused resume's answer uses up the next drop on the server."""
    passes = restarts + 1
    drops = [1000 * i for i in range(1, 2 * passes + 1)]
    url = http_server.add("/mrf/in.json.gz", small.payload, etag='"v1"', drop_at=drops)
    result, status, folder = extract(url, tmp_path, log_file, settings=settings(restarts=restarts))
    assert_failed(status, folder, "ignores Range requests", words)
    assert counts(status) == (0, 0, restarts)
    assert http_server.hits(url) == 2 * passes  # each pass a request and a refused resume
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary tables or spill files


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_run_extraction_waits_as_retry_after_says(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc, form: str
) -> None:
    retry_after: Any = "1"
    fails = 2
    if form == "http-date":  # whole seconds: 2 s from now is 1 to 2 s away
        fails = 1

        def retry_after() -> str:
            return formatdate(time.time() + 2, usegmt=True)

    url = http_server.add(
        "/mrf/in.json.gz", small.payload, fail_first=fails, fail_status=503, retry_after=retry_after
    )
    result, status, folder = extract(url, tmp_path, log_file, settings=settings(attempts=3))
    assert result.status == "success", result.error
    assert_same_tables(folder, small)
    assert counts(status) == (fails, 0, 0)
    assert http_server.route(url).statuses == [503] * fails + [200]
    assert min(gaps(http_server, url)) >= 0.9
    assert log_file.read_text().count("(Retry-After)") == fails


def test_run_extraction_backs_off_exponentially(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    url = http_server.add("/mrf/in.json.gz", small.payload, fail_first=3, fail_status=429)
    result, status, _ = extract(
        url, tmp_path, log_file, settings=settings(attempts=4, backoff_seconds=0.2)
    )
    assert result.status == "success", result.error
    assert counts(status) == (3, 0, 0)
    waits = gaps(http_server, url)
    # 0.2, 0.4, 0.8 s, each within +-20 % jitter (and a little scheduling delay)
    for wait, base in zip(waits, (0.2, 0.4, 0.8), strict=True):
        assert base * 0.8 <= wait <= base * 1.2 + 0.3, waits


def test_run_extraction_retry_time_budget_stops_retrying(
    http_server: FileServer, tmp_path: Path, log_file: Path
) -> None:
    url = http_server.add("/mrf/in.json.gz", b"x", fail_first=100, retry_after="1")
    started = time.monotonic()
    result, status, folder = extract(
        url, tmp_path, log_file, settings=settings(attempts=20, retry_seconds=2.5)
    )
    elapsed = time.monotonic() - started
    assert_failed(
        status,
        folder,
        "HTTP 503",
        "gave up after 3 attempts",
        "would pass the retry time budget of 2.5 s",
        "/mrf/in.json.gz",
    )
    assert counts(status) == (2, 0, 0)
    assert http_server.hits(url) == 3
    assert 2.0 <= elapsed < 4.5


def test_run_extraction_long_retry_after_is_capped_then_budgeted(
    http_server: FileServer, tmp_path: Path, log_file: Path
) -> None:
    url = http_server.add("/mrf/in.json.gz", b"x", fail_first=100, retry_after="86400")
    started = time.monotonic()
    result, status, folder = extract(url, tmp_path, log_file, settings=settings(retry_seconds=60))
    assert time.monotonic() - started < 3
    assert_failed(status, folder, "waiting 300.0 s more as Retry-After asks", "budget of 60 s")
    assert counts(status) == (0, 0, 0)


# ---------------------------------------------------------------- files that end early


def test_run_extraction_short_body_without_resume_fails(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    """Content-Length says more than ever arrives, and the server cannot resume."""
    at = len(small.payload) // 2
    url = http_server.add("/mrf/in.json.gz", small.payload, close_after=at)
    result, status, folder = extract(url, tmp_path, log_file)
    assert_failed(
        status,
        folder,
        f"{at} of {len(small.payload)} bytes announced by Content-Length",
        "neither an ETag nor Last-Modified",
        "gave up after 2 restarts",
    )
    assert counts(status) == (0, 0, 2)


def test_run_extraction_gzip_that_ends_early_fails_despite_resumes(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    cut = small.payload[: len(small.payload) * 3 // 5]
    url = http_server.add(
        "/mrf/in.json.gz", cut, etag='"v1"', ranges=True, drop_at=[100, len(cut) // 2]
    )
    result, status, folder = extract(url, tmp_path, log_file)
    assert_failed(
        status, folder, "gzip stream of", f"ends early: truncated after {len(cut)} compressed bytes"
    )
    assert counts(status) == (0, 2, 0)
    assert status["bytes_read"] == len(cut)


def test_run_extraction_json_that_ends_early_fails_despite_resumes(
    http_server: FileServer, tmp_path: Path, log_file: Path, small: Doc
) -> None:
    text = small.sf.to_bytes()
    cut = text[: len(text) * 2 // 3]
    payload = gzip.compress(cut, mtime=0)
    url = http_server.add(
        "/mrf/in.json.gz", payload, etag='"v1"', ranges=True, drop_at=[len(payload) // 2]
    )
    result, status, folder = extract(url, tmp_path, log_file)
    assert_failed(status, folder, f"ends early after {len(cut)} decoded bytes")
    assert counts(status) == (0, 1, 0)


# ---------------------------------------------------------------- command line and workflow


def test_main_retry_options_and_no_secret_on_stderr(
    http_server: FileServer, tmp_path: Path
) -> None:
    url = http_server.add("/mrf/in.json.gz", b"x", fail_first=100, retry_after="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrfbatch.run_extraction",
            "--url",
            url + SIGNATURE,
            "--output-dir",
            str(tmp_path / "out"),
            "--attempts",
            "10",
            "--retry-seconds",
            "1.5",
            "--backoff-seconds",
            "0.1",
        ],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert b"retry 1 of 9 in 1.0 s (Retry-After)" in proc.stderr
    assert b"would pass the retry time budget of 1.5 s" in proc.stderr
    for secret in SECRETS:
        assert secret not in proc.stderr + proc.stdout
    assert_no_secret(tmp_path / "out")
    assert http_server.hits(url) == 2


@pytest.mark.workflow
def test_workflow_manifest_counts_retries_and_resumes(
    http_server: FileServer, tmp_path: Path, small: Doc, other: Doc
) -> None:
    alpha = http_server.add(
        "/mrf/alpha.json.gz", small.payload, etag='"a1"', ranges=True, drop_at=[300, 9000, 20000]
    )
    beta = http_server.add("/mrf/beta.json.gz", other.payload, fail_first=2, retry_after="1")
    (tmp_path / "plans.csv").write_text(
        f"file_url,plan_name\n{alpha}{SIGNATURE},A\n{beta}{SIGNATURE},B\n", encoding="utf-8"
    )
    (tmp_path / "codes.txt").write_text("\n".join(sorted(WHITELIST)) + "\n")

    def snakemake(*config: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores"]
        return subprocess.run(
            [*command, "2", "--config", "source=csv", "input=plans.csv", *config],
            cwd=tmp_path,
            capture_output=True,
            timeout=240,
        )

    proc = snakemake("cpt_whitelist=codes.txt", "retry_seconds=30", "timeout=10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    entries = {e["network_id"]: e for e in manifest["extractions"]}
    assert entries["alpha"]["status"] == entries["beta"]["status"] == "success"
    assert (entries["alpha"]["retries"], entries["alpha"]["resumes"]) == (0, 3)
    assert (entries["beta"]["retries"], entries["beta"]["resumes"]) == (2, 0)
    assert entries["alpha"]["rate_rows"] == len(small.rates)
    assert entries["beta"]["rate_rows"] == len(other.rates)
    for name, doc in (("alpha", small), ("beta", other)):
        rates = pq.read_table(tmp_path / "results" / name / "rates.parquet").to_pylist()
        assert sorted_rows([{**r, "network_id": NET} for r in rates]) == doc.rates
    log = (tmp_path / "results" / "logs" / "extract" / "alpha.log").read_text()
    assert log.count("resuming from byte") == 3
    # tasks.tsv and the source list hold the full URLs on purpose (the jobs need them)
    assert_no_secret(tmp_path / "results", allowed=("tasks.tsv",))
    assert_no_secret(tmp_path / "results" / "logs")
    for secret in SECRETS:
        assert secret not in proc.stderr + proc.stdout
    # How patiently to fetch is no param of the job: changing it redoes nothing.
    again = snakemake("cpt_whitelist=codes.txt", "retry_seconds=5", "timeout=3")
    assert again.returncode == 0, again.stderr[-3000:]
    assert b"nothing to do, 2 files done before" in again.stderr, again.stderr[-3000:]
