"""Proxies from the environment (mrfbatch.proxies): which URL goes through which proxy, and
real fetches through a forwarding and CONNECT proxy on 127.0.0.1 (tests/support/proxy.py)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrfbatch.errors import TransportError
from mrfbatch.options import ExtractionOptions
from mrfbatch.proxies import proxy_for
from mrfbatch.run_extraction import run_extraction
from mrfbatch.sources.index import parse_index
from mrfbatch.transport import TransferStats, TransportSettings, open_source
from support import tocs
from support.httpserver import FileServer
from support.proxy import ForwardingProxy

QUICK = TransportSettings(attempts=1, backoff_seconds=0.01, remote_timeout=5.0)
BODY = b'{"provider_groups": []}'.ljust(60_000)  # JSON, padded: a body to break mid-way
DROP = 20_000


@pytest.fixture
def proxy() -> Iterator[ForwardingProxy]:
    server = ForwardingProxy().start()
    try:
        yield server
    finally:
        server.close()


def read_all(url: str, stats: TransferStats | None = None) -> bytes:
    with open_source(url, QUICK, stats) as raw:
        chunks = []
        while chunk := raw.read(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- which proxy, from the environment


def test_proxy_for_prefers_the_lower_case_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:1111")
    monkeypatch.setenv("https_proxy", "http://lower.example:2222")
    proxy = proxy_for("https://h.example/f.json")
    assert proxy is not None and (proxy.host, proxy.port) == ("lower.example", 2222)


def test_proxy_for_an_empty_lower_case_setting_turns_the_upper_case_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:1111")
    monkeypatch.setenv("https_proxy", "")
    assert proxy_for("https://h.example/f.json") is None


def test_proxy_for_takes_the_setting_of_the_url_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.example:3128")
    assert proxy_for("http://h.example/f.json") is None
    monkeypatch.setenv("HTTP_PROXY", "plain.example")  # no scheme: http://, port 80
    proxy = proxy_for("http://h.example/f.json")
    assert proxy is not None
    assert (proxy.host, proxy.port, proxy.shown) == ("plain.example", 80, "http://plain.example:80")


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("example.org", "https://cdn.example.org/f", True),
        (".example.org", "https://example.org/f", True),
        ("example.org", "https://badexample.org/f", False),
        ("h.example:8443", "https://h.example:8443/f", True),
        ("h.example:8443", "https://h.example/f", False),
        ("other.example, 127.0.0.1", "http://127.0.0.1:9/f", True),
        ("*", "https://anything.example/f", True),
        ("", "https://h.example/f", False),
    ],
)
def test_proxy_for_leaves_no_proxy_hosts_direct(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, direct: bool
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (proxy_for(url) is None) is direct


def test_proxy_for_sends_credentials_as_basic_and_never_shows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", "http://us%40er:p%3Ass@proxy.example:3128")
    proxy = proxy_for("https://h.example/f.json")
    assert proxy is not None
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # base64 of "us@er:p:ss"
    assert proxy.shown == "http://proxy.example:3128"


@pytest.mark.parametrize("setting", ["socks5://u:s3cretPw@p.example:1080", "https://p.example"])
def test_proxy_for_refuses_a_proxy_it_cannot_speak_to(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("https_proxy", setting)
    with pytest.raises(TransportError, match=r"in https_proxy \(or HTTPS_PROXY\) cannot be used"):
        proxy_for("https://h.example/f.json")
    try:
        proxy_for("https://h.example/f.json")
    except TransportError as exc:
        assert "s3cretPw" not in str(exc) and not exc.retryable


# ---------------------------------------------------------------- http through the proxy


def test_http_goes_through_the_proxy_and_resumes_through_it(
    http_server: FileServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/f.json", BODY, etag='"v1"', ranges=True, drop_at=[DROP])
    monkeypatch.setenv("http_proxy", f"http://user:s3cretPw@{proxy.address}")
    stats = TransferStats()
    assert read_all(url + "?sig=abc", stats) == BODY
    assert stats.resumes == 1
    assert proxy.request_lines == [f"GET {url}?sig=abc HTTP/1.1"] * 2
    assert http_server.hits(url) == 2  # every request the origin saw came through the proxy
    first, resumed = proxy.seen
    assert "range" not in first.headers
    assert (resumed.headers["range"], resumed.headers["if-range"]) == (f"bytes={DROP}-", '"v1"')
    assert first.headers["proxy-authorization"] == "Basic dXNlcjpzM2NyZXRQdw=="  # user:s3cretPw


def test_no_proxy_fetches_directly(
    http_server: FileServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/f.json", BODY)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert read_all(url) == BODY
    assert proxy.request_lines == []
    assert http_server.hits(url) == 1


def test_extraction_fetches_its_file_and_remote_references_through_the_proxy(
    http_server: FileServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    remote = {"provider_groups": [{"npi": [1234567893], "tin": {"type": "ein", "value": "1"}}]}
    ref_url = http_server.add("/refs/r.json", json.dumps(remote).encode())
    doc = {
        "provider_references": [{"provider_group_id": 1, "location": ref_url}],
        "in_network": [
            {
                "billing_code": "1",
                "negotiated_rates": [
                    {"provider_references": [1], "negotiated_prices": [{"negotiated_rate": 2}]}
                ],
            }
        ],
    }
    url = http_server.add("/in.json", json.dumps(doc).encode())
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    result = run_extraction(url, tmp_path, ExtractionOptions(transport=QUICK), network_id="net")
    assert (result.status, result.rate_rows, result.provider_rows) == ("success", 1, 1)
    assert proxy.request_lines == [f"GET {url} HTTP/1.1", f"GET {ref_url} HTTP/1.1"]


def test_index_is_fetched_through_the_proxy(
    http_server: FileServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    toc = tocs.toc(tocs.structure([tocs.GOLD], "https://files.example/in.json"))
    url = http_server.add("/index.json", toc)
    monkeypatch.setenv("http_proxy", proxy.url)
    tasks = parse_index(url, QUICK)
    assert [task.url for task in tasks] == ["https://files.example/in.json"]
    assert proxy.request_lines == [f"GET {url} HTTP/1.1"]


def test_a_proxy_refusing_http_names_itself(
    http_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/f.json", BODY)
    refusing = ForwardingProxy(refuse=403).start()
    try:
        monkeypatch.setenv("http_proxy", f"http://user:s3cretPw@{refusing.address}")
        with pytest.raises(TransportError) as caught:
            read_all(url)
    finally:
        refusing.close()
    assert str(caught.value) == (
        f"HTTP 403 Forbidden from host 127.0.0.1 through proxy {refusing.url} for {url}"
    )
    assert not caught.value.retryable
    assert http_server.hits(url) == 0


# ---------------------------------------------------------------- https through a CONNECT tunnel


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by `openssl req`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the HTTPS origin")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FileServer]:
    """A FileServer over TLS, its certificate the only one the transport trusts."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = FileServer(tls=context).start()
    try:
        yield server
    finally:
        server.close()


def test_https_goes_through_a_tunnel_and_resumes_through_it(
    https_server: FileServer, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = https_server.add("/f.json", BODY, etag='"v1"', ranges=True, drop_at=[DROP])
    assert url.startswith("https://127.0.0.1:")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    stats = TransferStats()
    assert read_all(url, stats) == BODY
    assert stats.resumes == 1
    origin = url.split("/")[2]
    assert proxy.request_lines == [f"CONNECT {origin} HTTP/1.0"] * 2
    assert https_server.route(url).range_headers == [(None, None), (f"bytes={DROP}-", '"v1"')]


def test_https_without_a_proxy_checks_the_same_certificate(https_server: FileServer) -> None:
    url = https_server.add("/f.json", BODY)
    assert read_all(url) == BODY


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (407, "Proxy Authentication Required (check the user and password in https_proxy)"),
        (403, "Forbidden"),
    ],
)
def test_a_proxy_refusing_connect_names_itself_without_credentials(
    https_server: FileServer, monkeypatch: pytest.MonkeyPatch, status: int, reason: str
) -> None:
    url = https_server.add("/f.json", BODY)
    refusing = ForwardingProxy(refuse=status).start()
    try:
        monkeypatch.setenv("https_proxy", f"http://user:s3cretPw@{refusing.address}")
        with pytest.raises(TransportError) as caught:
            read_all(url)
    finally:
        refusing.close()
    origin = url.split("/")[2]
    assert str(caught.value) == (
        f"proxy {refusing.url} refused the tunnel (CONNECT) to {origin}: HTTP {status} {reason}, "
        f"for {url}"
    )
    assert "s3cretPw" not in str(caught.value)
    assert not caught.value.retryable
    assert refusing.request_lines == [f"CONNECT {origin} HTTP/1.0"]


def test_a_proxy_that_cannot_be_reached_is_named(
    http_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/f.json", BODY)
    monkeypatch.setenv("http_proxy", "http://user:s3cretPw@127.0.0.1:9")
    with pytest.raises(TransportError) as caught:
        read_all(url)
    assert str(caught.value).startswith(
        "connection to host 127.0.0.1 through proxy http://127.0.0.1:9 failed: "
    )
    assert "s3cretPw" not in str(caught.value)
    assert http_server.hits(url) == 0
