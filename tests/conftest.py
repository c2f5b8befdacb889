"""Shared fixtures: a local HTTP file server (tests/support/httpserver.py), and loopback-only
sockets. Puts tests/ on the path, so tests import their helpers from the `support` package."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import containers  # noqa: E402
from support.httpserver import FileServer  # noqa: E402
from support.workflows import WHITELIST, synth_file  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Where MRFBATCH_EXTENSIONS_FROM names a folder (.ci/sanitizers: the sanitized build),
    the C extensions must be imported from it, or the run stops before any test.

    SIGINT reaches the processes tests start as it does from a terminal: a shell without job
    control starts a background command (`(bash .ci/run &)`) with SIGINT ignored, every
    child inherits that, and the tests that press Ctrl-C would see nothing happen.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_DFL in a child
    expected = os.environ.get("MRFBATCH_EXTENSIONS_FROM")
    if not expected:
        return
    from mrfbatch import _jsonscan, _rows

    for module in (_jsonscan, _rows):
        where = Path(module.__file__ or "").resolve().parent
        if where != Path(expected).resolve():
            raise pytest.UsageError(
                f"{module.__name__} was imported from {where}, not from {expected}"
                " (MRFBATCH_EXTENSIONS_FROM): put that folder's parent first on PYTHONPATH"
            )


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Tests that run thousands of extractions keep their log lines out of the report (use it
    with `pytestmark = pytest.mark.usefixtures("quiet_logs")`)."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    """A started FileServer on 127.0.0.1 with a random port, closed after the test."""
    server = FileServer().start()
    try:
        yield server
    finally:
        server.close()


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach 127.0.0.1 only: any other host fails name resolution, without a query.

    The real CareFirst file names a remote host in its provider references; here that host is
    unreachable by construction instead of by a DNS answer.
    """
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"tests may only reach 127.0.0.1, not {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests fetch directly, whatever proxy the shell running them names; the proxy tests set
    their own."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def served(http_server: FileServer, tmp_path: Path) -> dict[str, Any]:
    """Two in-network files on the server (alpha, beta), and WHITELIST in codes.txt in the
    work folder: what the workflow's tests run on."""
    files = {
        "alpha": synth_file(1),
        "beta": synth_file(2, refs_position="after", inline_groups=True),
    }
    urls = {
        name: http_server.add(f"/mrf/{name}.json.gz", containers.pack(sf.to_bytes(), "gz"))
        for name, sf in files.items()
    }
    (tmp_path / "codes.txt").write_text("\n".join(WHITELIST) + "\n")
    return {"files": files, "urls": urls, "server": http_server}
