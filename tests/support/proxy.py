"""A real HTTP proxy on 127.0.0.1 that records what it is asked (for tests/test_proxies.py).

An absolute-URI request (`GET http://127.0.0.1:PORT/path HTTP/1.1`) is forwarded to its origin
and the answer relayed as it comes, byte for byte; `CONNECT 127.0.0.1:PORT` opens a tunnel and
pipes bytes both ways. One request per client connection. Only 127.0.0.1 is ever contacted::

    proxy = ForwardingProxy().start()
    monkeypatch.setenv("http_proxy", proxy.url)
    ...
    assert proxy.request_lines == ["GET http://127.0.0.1:4711/f.json HTTP/1.1"]

`refuse` answers every request with that status instead (407 asks for credentials).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_HOP_BY_HOP = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


@dataclass
class Seen:
    """One request the proxy read: its request line and headers (names in lower case)."""

    line: str
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        headers: dict[str, str] = {}
        raw_headers: list[str] = []
        while True:
            header = self.rfile.readline(65537).decode("latin-1")
            if header in ("\r\n", "\n", ""):
                break
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
            raw_headers.append(header.rstrip("\r\n"))
        with owner.lock:
            owner.seen.append(Seen(line, headers))
        method, target, _ = (line.split(" ") + ["", "", ""])[:3]
        if owner.refuse is not None:
            reason = "Proxy Authentication Required" if owner.refuse == 407 else "Forbidden"
            self.wfile.write(
                f'HTTP/1.1 {owner.refuse} {reason}\r\nProxy-Authenticate: Basic realm="t"\r\n'
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = _origin(host, int(port))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            _pipe(self.connection, upstream)
            return
        parts = urlsplit(target)
        assert parts.hostname is not None
        upstream = _origin(parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [h for h in raw_headers if h.partition(":")[0].strip().lower() not in _HOP_BY_HOP]
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        upstream.sendall(request.encode("latin-1"))
        try:
            while data := upstream.recv(65536):
                self.connection.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


def _origin(host: str, port: int) -> socket.socket:
    if host != "127.0.0.1":
        raise ValueError(f"the test proxy reaches 127.0.0.1 only, not {host}")
    return socket.create_connection((host, port), timeout=15)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    back.start()
    copy(client, upstream)
    back.join(timeout=15)
    upstream.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ForwardingProxy

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up mid-answer is part of the tests


class ForwardingProxy:
    """The proxy on 127.0.0.1 (random port); start() / close(). `seen` lists every request."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def request_lines(self) -> list[str]:
        with self.lock:
            return [seen.line for seen in self.seen]

    def start(self) -> ForwardingProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
