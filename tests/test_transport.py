"""The transport (mrfbatch.transport) on its own: opening files and URLs, what it refuses,
retries, resumes, and whether a failure may be retried. Whole extractions over a server that
misbehaves are in test_faults.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mrfbatch.errors import TransportError, UnreachableError
from mrfbatch.transport import (
    ByteSource,
    TransferStats,
    TransportSettings,
    open_source,
)
from mrfbatch.urls import http_url_problem
from support.httpserver import FileServer

QUICK = TransportSettings(attempts=3, backoff_seconds=0.01, retry_seconds=5)


def read_all(
    url: str, settings: TransportSettings = QUICK, stats: TransferStats | None = None
) -> tuple[bytes, ByteSource]:
    with open_source(url, settings, stats) as source:
        chunks = []
        while chunk := source.read(1000):
            chunks.append(chunk)
        return b"".join(chunks), source


def test_open_source_local_file_knows_its_size(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"x" * 2500)
    data, source = read_all(str(path))
    assert (data, source.bytes_read, source.expected_length) == (b"x" * 2500, 2500, 2500)
    data, _ = read_all(path.as_uri())  # a file:// URL too
    assert len(data) == 2500


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("missing.json", r"^file missing\.json does not exist$"),
        ("ftp://h.example/a.json", r"^unsupported URL scheme 'ftp' in ftp://h.example/a.json$"),
    ],
)
def test_open_source_refuses_for_good(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=message) as caught:
        open_source(url, QUICK)
    assert caught.value.retryable is False


def test_open_source_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=r"is a directory, expected a file$") as caught:
        open_source(str(tmp_path), QUICK)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://h.example/a b.json", "contains a space (encode it as %20)"),
        ("https://h.example/a\tb.json", "contains a tab, newline or control character"),
        ("https:///a.json", "has no host name"),
        (
            "https://h.example:99999/a",
            "is not a valid URL: its port is not a number from 0 to 65535",
        ),
        (
            "https://h.example/caf\u00e9.json",
            "contains the non-ASCII character 'é' (U+00E9) after its host; percent-encode it "
            "as %C3%A9",
        ),
        ("https://h.example/a.json?Signature=x", None),
        ("https://xn--caf-dma.example/a.json", None),
    ],
)
def test_http_url_problem(url: str, problem: str | None) -> None:
    assert http_url_problem(url) == problem


def test_http_404_is_not_retried(http_server: FileServer) -> None:
    url = http_server.add("/gone.json", b"", status=404)
    with pytest.raises(
        TransportError, match=r"^HTTP 404 Not Found from host 127\.0\.0\.1 for "
    ) as caught:
        open_source(url + "?Signature=s3cr3tS1gnature", QUICK)
    assert caught.value.retryable is False
    assert "s3cr3tS1gnature" not in str(caught.value)
    assert http_server.hits("/gone.json") == 1


def test_http_503_is_retried_and_counted(http_server: FileServer) -> None:
    url = http_server.add("/busy.json", b"{}", fail_first=2, fail_status=503)
    stats = TransferStats()
    data, _ = read_all(url, stats=stats)
    assert (data, stats.retries, http_server.hits("/busy.json")) == (b"{}", 2, 3)


def test_http_503_after_every_attempt_may_be_retried_later(http_server: FileServer) -> None:
    url = http_server.add("/down.json", b"", status=503)
    with pytest.raises(TransportError, match=r"\(gave up after 3 attempts in ") as caught:
        open_source(url, QUICK)
    assert caught.value.retryable is True
    assert http_server.hits("/down.json") == 3


def test_http_503_with_one_attempt_says_so(http_server: FileServer) -> None:
    url = http_server.add("/down.json", b"", status=503)
    with pytest.raises(
        TransportError,
        match=rf"^HTTP 503 Service Unavailable from host 127\.0\.0\.1 \(gave up after 1 attempt "
        rf"in \d+\.\d s\) for {re.escape(url)}$",
    ):
        open_source(url, TransportSettings(attempts=1))


def test_unreachable_host_is_retryable() -> None:
    settings = TransportSettings(attempts=1, connect_timeout=2)
    with pytest.raises(UnreachableError, match=r"connection to host 127\.0\.0\.1 failed") as caught:
        open_source("http://127.0.0.1:9/a.json", settings)
    assert caught.value.retryable is True


def test_http_body_is_resumed_where_it_broke(http_server: FileServer) -> None:
    payload = os.urandom(50_000)
    url = http_server.add("/big.bin", payload, etag='"v1"', ranges=True, drop_at=[7000, 31000])
    stats = TransferStats()
    data, source = read_all(url, stats=stats)
    assert data == payload and source.expected_length == len(payload)
    assert stats.resumes == 2
    assert [rng for rng, _ in http_server.route("/big.bin").range_headers] == [
        None,
        "bytes=7000-",
        "bytes=31000-",
    ]
