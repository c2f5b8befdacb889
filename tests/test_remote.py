"""Remote provider-reference files (mrfbatch.remote): fetched in order a few at a time, each
outcome either the groups or one sentence saying why there are none."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mrfbatch.remote import HOST_FAILURE_LIMIT, RemoteFetcher, in_order
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
    assert not isinstance(groups, str) and len(groups) == 1


def test_remote_fetch_names_the_url_once_in_its_reason(http_server: FileServer) -> None:
    url = http_server.add("/refs/gone.json", b"", status=404)
    assert fetcher().fetch(url + "?sig=s3cr3tS1gn") == (
        f"HTTP 404 Not Found from host 127.0.0.1 for {url}"
    )


def test_remote_fetch_says_which_file_is_over_the_limit(http_server: FileServer) -> None:
    url = http_server.add("/refs/big.json", json.dumps(GROUPS).encode() + b" " * 2000)
    reason = fetcher(max_bytes=100).fetch(url)
    assert reason == (
        f"{url}: more than 100 bytes of JSON, the limit of a value held whole (max_value_mb); "
        "its groups are not read"
    )


def test_remote_fetch_refuses_a_location_that_is_not_http() -> None:
    assert fetcher().fetch("ftp://h.example/a.json") == "ftp://h.example/a.json: not an http(s) URL"


def test_remote_fetch_stops_asking_a_host_that_cannot_be_reached() -> None:
    remote = fetcher()
    urls = [f"http://127.0.0.1:9/refs/{i}.json" for i in range(HOST_FAILURE_LIMIT + 2)]
    reasons = [remote.fetch(url) for url in urls]
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
