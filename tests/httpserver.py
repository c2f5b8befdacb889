"""A real HTTP server on 127.0.0.1 serving in-memory files with scripted misbehaviour.

Used through the ``http_server`` fixture (tests/conftest.py)::

    url = http_server.add("/files/rates.json.gz", payload, fail_first=2, fail_status=503)
    ...
    assert http_server.hits("/files/rates.json.gz") == 3

Query strings are ignored when matching paths (signed URLs work). Unknown paths answer 404.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Route:
    """One served file and how to misbehave when serving it."""

    data: bytes
    status: int = 200  # answer every request with this status (body: a short text)
    fail_first: int = 0  # answer the first N requests with fail_status, then serve data
    fail_status: int = 503
    content_type: str = "application/octet-stream"
    close_after: int | None = None  # announce len(data), send only this many bytes, close
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    no_length: bool = False  # no Content-Length, body ends when the connection closes
    delay: float = 0.0  # seconds to wait before answering (to observe overlapping requests)
    hits: int = 0
    requests: list[str] = field(default_factory=list)  # request targets, with query strings
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end) monotonic


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15  # lets a thread serving an idle keep-alive connection end
    server: _Server

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.owner.log.append(format % args)

    def _answer(self, head: bool) -> None:
        owner = self.server.owner
        started = time.monotonic()
        route, hit = owner._begin(urlsplit(self.path).path, self.path)
        try:
            if route is None:
                self._plain(404, b"not found\n", head)
                return
            if route.delay:
                time.sleep(route.delay)
            if hit <= route.fail_first:
                self._plain(route.fail_status, b"try again later\n", head)
            elif route.status != 200:
                self._plain(route.status, b"refused\n", head)
            else:
                self._serve(route, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            owner._end(route, started)

    def _plain(self, status: int, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, route: Route, head: bool) -> None:
        data = route.data
        self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif route.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if head:
            return
        if route.close_after is not None:
            self.wfile.write(data[: route.close_after])
            self.wfile.flush()
            self.close_connection = True
        elif route.chunked:
            for i in range(0, len(data), 4096):
                chunk = data[i : i + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.errors.append(repr(sys.exc_info()[1]))  # keep pytest's output clean


class FileServer:
    """In-memory files over HTTP on 127.0.0.1 (random port); start() / close()."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._active = 0
        self.max_concurrent = 0  # most requests in progress at once, over all paths
        self.log: list[str] = []
        self.errors: list[str] = []
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def add(self, path: str, data: bytes, **behaviour: Any) -> str:
        """Serve data at path (a full URL on this server also works); return the full URL.

        behaviour: any field of :class:`Route` (status, fail_first, fail_status, content_type,
        close_after, chunked, no_length, delay).
        """
        path = urlsplit(path).path or "/"
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._routes[path] = Route(data=data, **behaviour)
        return self.base_url + path

    def route(self, path: str) -> Route:
        """The Route served at path (or at the path of a full URL)."""
        return self._routes[urlsplit(path).path]

    def hits(self, path: str) -> int:
        """How many requests reached path (or the path of a full URL)."""
        return self.route(path).hits

    def _begin(self, path: str, target: str) -> tuple[Route | None, int]:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            route = self._routes.get(path)
            if route is None:
                return None, 0
            route.hits += 1
            route.requests.append(target)
            return route, route.hits

    def _end(self, route: Route | None, started: float) -> None:
        with self._lock:
            self._active -= 1
            if route is not None:
                route.spans.append((started, time.monotonic()))
