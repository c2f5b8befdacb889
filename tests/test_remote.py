"""Remote provider-reference files (mrfbatch.remote): fetched in order a few at a time, each
outcome either the groups or one sentence saying why there are none."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mrfbatch.options import ExtractionOptions
from mrfbatch.remote import HOST_FAILURE_LIMIT, RemoteFailure, RemoteFetcher, in_order
from mrfbatch.run_extraction import run_extraction
from mrfbatch.tables import Quality
from mrfbatch.transport import TransportSettings
from support.httpserver import FileServer

QUICK = TransportSettings(attempts=1, backoff_seconds=0.01, remote_timeout=2.0)
GROUPS = {"provider_groups": [{"npi": [1234567893], "tin": {"type": "ein", "value": "11"}}]}


def fetcher(max_bytes: int = 1 << 20) -> RemoteFetcher:
    return RemoteFetcher(QUICK, Quality(), max_bytes)


def test_remote_fetch_returns_the_groups_of_a_file(http_server: FileServer) -> None:
    url = http_server.add("/refs/a.json", json.dumps(GROUPS).encode())
    groups = fetcher().fetch(url)
    assert not isinstance(groups, RemoteFailure) and len(groups) == 1


def test_remote_fetch_names_the_url_once_in_its_reason(http_server: FileServer) -> None:
    url = http_server.add("/refs/gone.json", b"", status=404)
    assert fetcher().fetch(url + "?sig=s3cr3tS1gn") == RemoteFailure(
        f"HTTP 404 Not Found from host 127.0.0.1 for {url}", retryable=False
    )


def test_remote_fetch_a_server_error_may_pass(http_server: FileServer) -> None:
    url = http_server.add("/refs/busy.json", b"", status=503)
    failure = fetcher().fetch(url)
    assert isinstance(failure, RemoteFailure) and failure.retryable is True
    assert re.fullmatch(
        rf"HTTP 503 Service Unavailable from host 127\.0\.0\.1 \(gave up after 1 attempt in "
        rf"\d+\.\d s\) for {re.escape(url)}",
        failure.reason,
    )


def test_remote_fetch_says_which_file_is_over_the_limit(http_server: FileServer) -> None:
    url = http_server.add("/refs/big.json", json.dumps(GROUPS).encode() + b" " * 2000)
    assert fetcher(max_bytes=100).fetch(url) == RemoteFailure(
        f"{url}: more than 100 bytes of JSON, the limit of a value held whole (max_value_mb); "
        "its groups are not read",
        retryable=False,
    )


def test_remote_fetch_refuses_a_location_that_is_not_http() -> None:
    assert fetcher().fetch("ftp://h.example/a.json") == RemoteFailure(
        "ftp://h.example/a.json: not an http(s) URL", retryable=False
    )


def test_remote_fetch_stops_asking_a_host_that_cannot_be_reached() -> None:
    remote = fetcher()
    urls = [f"http://127.0.0.1:9/refs/{i}.json" for i in range(HOST_FAILURE_LIMIT + 2)]
    failures = [remote.fetch(url) for url in urls]
    assert all(isinstance(f, RemoteFailure) and f.retryable for f in failures)
    reasons = [f.reason for f in failures if isinstance(f, RemoteFailure)]
    assert all("connection to host 127.0.0.1 failed" in r for r in reasons[:HOST_FAILURE_LIMIT])
    assert reasons[HOST_FAILURE_LIMIT:] == [
        f"{url}: skipped, host 127.0.0.1 unreachable" for url in urls[HOST_FAILURE_LIMIT:]
    ]


@pytest.mark.parametrize("workers", [1, 3])
def test_remote_fetches_are_taken_in_order_from_a_bounded_window(workers: int) -> None:
    """Behind a slow first file, at most 2 x workers fetches start before its result is taken,
    so the other files' groups cannot all wait in memory at once."""
    locations = [str(i) for i in range(60)]
    started: list[str] = []
    lock = threading.Lock()

    def fetch(location: str) -> str:
        with lock:
            started.append(location)
        if location == "0":
            time.sleep(0.3)
        return "groups of " + location

    taken = []
    for location, result in in_order(fetch, locations, workers):
        assert result == "groups of " + location
        with lock:
            assert len(started) <= int(location) + 1 + 2 * workers, (location, len(started))
        taken.append(location)
    assert taken == locations
    assert sorted(started, key=int) == locations  # each fetched once


def provider_file(npi: int, count: int = 1) -> bytes:
    group = {"npi": [npi], "tin": {"type": "ein", "value": str(npi)}}
    return json.dumps({"provider_groups": [group] * count}).encode()


def test_run_extraction_counts_and_lists_what_remote_files_took(
    http_server: FileServer, tmp_path: Path
) -> None:
    """Four remote files: one answers 503 twice, one breaks mid-body, one is over max_value_mb,
    one is gone. The retries (2) and the resume (1) are in the status; so is each failure."""
    flaky = http_server.add("/refs/flaky.json", provider_file(1111111111), fail_first=2)
    cut_body = provider_file(2222222222, 200)
    cut = http_server.add("/refs/cut.json", cut_body, etag='"c1"', ranges=True, drop_at=[5000])
    big_body = provider_file(3333333333, 30_000)
    assert len(big_body) > 1 << 20  # max_value_mb=1
    big = http_server.add("/refs/big.json", big_body)
    gone = http_server.add("/refs/gone.json", b"", status=404)
    refs = [
        {"provider_group_id": i, "location": url + "?sig=s3cr3tS1gnature"}
        for i, url in enumerate([flaky, cut, big, gone], start=1)
    ]
    doc = tmp_path / "in.json"
    doc.write_text(
        json.dumps(
            {
                "provider_references": refs,
                "in_network": [
                    {
                        "billing_code": "1",
                        "negotiated_rates": [
                            {
                                "provider_references": [1, 2, 3, 4],
                                "negotiated_prices": [{"negotiated_rate": 1.5}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    patient = TransportSettings(attempts=3, backoff_seconds=0.01, remote_timeout=5.0)
    options = ExtractionOptions(max_value_mb=1, transport=patient)
    result = run_extraction(str(doc), tmp_path / "out", options, network_id="net")
    status = json.loads((tmp_path / "out" / "net" / "status.json").read_text())
    assert status["status"] == "incomplete"
    assert (status["retries"], status["resumes"], status["restarts"]) == (2, 1, 0)
    assert (status["remote_references_fetched"], status["remote_references_failed"]) == (2, 2)
    assert status["provider_rows"] == 1 + 200  # a row per group of the two files read
    assert [f["url"] for f in status["remote_failures"]] == [big, gone]
    # neither a file over the limit nor a 404 can be read by a rerun
    assert [f["retryable"] for f in status["remote_failures"]] == [False, False]
    assert status["retryable"] is False
    assert status["remote_failures"][0]["error"] == (
        f"{big}: more than 1 MB of JSON, the limit of a value held whole (max_value_mb); its "
        "groups are not read"
    )
    assert status["remote_failures"][1]["error"] == (
        f"HTTP 404 Not Found from host 127.0.0.1 for {gone}"
    )
    assert status["incomplete"] == [
        "2 of 4 remote provider-reference files could not be fetched; their groups have no "
        f"provider rows (first: {status['remote_failures'][0]['error']}); remote_failures "
        "names each and why"
    ]
    assert "s3cr3tS1gnature" not in json.dumps(status)
    assert result.remote_failures == status["remote_failures"]
    assert http_server.hits(flaky) == 3
    assert http_server.route(cut).range_headers == [(None, None), ("bytes=5000-", '"c1"')]


def test_run_extraction_big_remote_file_is_not_read_whole(
    http_server: FileServer, tmp_path: Path
) -> None:
    """A remote file of 40 MB with a limit of 1 MB: the fetch stops soon after the limit, so
    the server cannot have sent much more than the limit and its socket buffers hold."""
    body = provider_file(3333333333, 600_000)
    assert len(body) > 40 << 20
    big = http_server.add("/refs/big.json", body)
    ref = {"provider_group_id": 1, "location": big}
    doc = tmp_path / "in.json"
    doc.write_text(
        json.dumps({"provider_references": [ref], "in_network": []}).replace(
            '"in_network": []',
            '"in_network": [{"billing_code": "1", "negotiated_rates": [{"provider_references": '
            '[1], "negotiated_prices": [{"negotiated_rate": 1}]}]}]',
        )
    )
    options = ExtractionOptions(max_value_mb=1, transport=QUICK)
    result = run_extraction(str(doc), tmp_path / "out", options, network_id="net")
    assert (result.status, result.remote_references_failed) == ("incomplete", 1)
    assert "more than 1 MB of JSON" in result.remote_failures[0]["error"]
    time.sleep(0.2)  # the server's write fails once the client has closed
    assert http_server.route(big).sent < 16 << 20, http_server.route(big).sent


def in_network_file(references: list[dict[str, object]], used: list[int]) -> bytes:
    """An in-network file with `references` and one item whose rate lists the ids `used`."""
    rate = {"provider_references": used, "negotiated_prices": [{"negotiated_rate": 1.5}]}
    item = {"billing_code": "1", "negotiated_rates": [rate]}
    return json.dumps({"provider_references": references, "in_network": [item]}).encode()


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_run_extraction_relative_locations_are_relative_to_the_file_url(
    http_server: FileServer, tmp_path: Path, engine: str
) -> None:
    """As RFC 3986 resolves a reference, without the file's query string; the same file named
    relative and absolute is fetched once."""
    a = http_server.add("/mrf/refs/a.json", provider_file(1111111111))
    b = http_server.add("/other/b.json", provider_file(2222222222))
    references = [
        {"provider_group_id": 1, "location": "refs/a.json"},
        {"provider_group_id": 2, "location": "/other/b.json"},
        {"provider_group_id": 3, "location": a},
    ]
    url = http_server.add("/mrf/in.json", in_network_file(references, [1, 2, 3]))
    options = ExtractionOptions(engine=engine, transport=QUICK)
    result = run_extraction(url + "?sig=s3cr3t", tmp_path / "out", options, network_id="net")
    assert (result.status, result.remote_references_fetched) == ("success", 2)
    providers = pq.read_table(tmp_path / "out" / "net" / "providers.parquet").to_pylist()
    assert [(p["provider_group_id"], p["npi"], p["source"]) for p in providers] == [
        ("1", 1111111111, "remote"),
        ("2", 2222222222, "remote"),
        ("3", 1111111111, "remote"),
    ]
    assert (http_server.hits(a), http_server.hits(b)) == (1, 1)


def test_run_extraction_relative_location_of_a_local_file_is_not_fetched(tmp_path: Path) -> None:
    doc = tmp_path / "in.json"
    doc.write_bytes(in_network_file([{"provider_group_id": 1, "location": "refs/a.json"}], [1]))
    options = ExtractionOptions(transport=QUICK)
    result = run_extraction(str(doc), tmp_path / "out", options, network_id="net")
    assert result.status == "incomplete"
    assert result.remote_failures == [
        {"url": "refs/a.json", "error": "refs/a.json: not an http(s) URL", "retryable": False}
    ]
    assert result.retryable is False


def test_run_extraction_incomplete_may_be_completed_when_a_failure_may_pass(
    http_server: FileServer, tmp_path: Path
) -> None:
    gone = http_server.add("/refs/gone.json", b"", status=404)
    busy = http_server.add("/refs/busy.json", b"", status=503)
    references = [
        {"provider_group_id": 1, "location": gone},
        {"provider_group_id": 2, "location": busy},
    ]
    doc = tmp_path / "in.json"
    doc.write_bytes(in_network_file(references, [1, 2]))
    options = ExtractionOptions(transport=QUICK)
    result = run_extraction(str(doc), tmp_path / "out", options, network_id="net")
    status = json.loads((tmp_path / "out" / "net" / "status.json").read_text())
    assert status["status"] == "incomplete"
    assert [(f["url"], f["retryable"]) for f in status["remote_failures"]] == [
        (gone, False),
        (busy, True),
    ]
    assert status["retryable"] is True and result.retryable is True
