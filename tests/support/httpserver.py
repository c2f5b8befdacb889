"""A real HTTP server on 127.0.0.1 serving in-memory files with scripted misbehaviour.

Used through the ``http_server`` fixture (tests/conftest.py)::

    url = http_server.add("/files/rates.json.gz", payload, fail_first=2, fail_status=503)
    ...
    assert http_server.hits("/files/rates.json.gz") == 3

    # honour Range/If-Range, and break the body at three offsets (each once, over all requests)
    url = http_server.add("/files/big.json.gz", payload, etag='"v1"', ranges=True,
                          drop_at=[1000, 50_000, 90_000])

Query strings are ignored when matching paths (signed URLs work). Unknown paths answer 404.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_RANGE = re.compile(r"bytes=(\d+)-$")
_THROTTLED_PIECE = 16384  # bytes per write of a body sent at a `rate`


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
    # Retry-After header of the fail_first / fail_hits answers (a callable: made per answer)
    retry_after: str | Callable[[], str] | None = None
    fail_hits: tuple[int, ...] = ()  # also answer these requests (1-based) with fail_status
    etag: str | None = None  # ETag header of the file's answers
    last_modified: str | None = None  # Last-Modified header of the file's answers
    ranges: bool = False  # honour `Range: bytes=N-` (206, Content-Range); False: always 200
    if_range: bool = True  # with ranges: a stale If-Range gets the whole file (200)
    # File offsets at which an answer stops and the connection is dropped; each is used once,
    # by the first answer that reaches it (after a restart from zero too).
    drop_at: list[int] = field(default_factory=list)
    reset: bool = False  # drop with a TCP reset (RST) instead of a normal close (FIN)
    stall_at: list[int] = field(default_factory=list)  # offsets: send nothing, then close; once
    stall_seconds: float = 0.0  # how long a stall lasts
    replace_after: int | None = None  # after this many requests the file changes to:
    replacement: bytes = b""
    replacement_etag: str | None = None  # (its Last-Modified stays `last_modified`)
    location: str | None = None  # redirect: answer 302 (or `status`, if 3xx) with this Location
    rate: float = 0.0  # send the body at about this many bytes per second (0: at once)
    sent: int = 0  # body bytes sent so far, over all requests (not chunked ones)
    hits: int = 0
    requests: list[str] = field(default_factory=list)  # request targets, with query strings
    range_headers: list[tuple[str | None, str | None]] = field(
        default_factory=list
    )  # Range, If-Range
    statuses: list[int] = field(default_factory=list)  # status of every answer
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end) monotonic

    def version(self, hit: int) -> tuple[bytes, str | None]:
        """The file's bytes and ETag as request number `hit` sees them."""
        if self.replace_after is not None and hit > self.replace_after:
            return self.replacement, self.replacement_etag
        return self.data, self.etag


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
        route, hit = owner._begin(
            urlsplit(self.path).path,
            self.path,
            (self.headers.get("Range"), self.headers.get("If-Range")),
        )
        try:
            if route is None:
                self._plain(404, b"not found\n", head)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.location is not None:
                self._redirect(route, head)
            elif hit <= route.fail_first or hit in route.fail_hits:
                retry_after = route.retry_after
                if callable(retry_after):
                    retry_after = retry_after()
                self._plain(route.fail_status, b"try again later\n", head, retry_after)
            elif route.status != 200:
                self._plain(route.status, b"refused\n", head)
            else:
                self._serve(route, hit, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            owner._end(route, started)

    def _redirect(self, route: Route, head: bool) -> None:
        assert route.location is not None
        self._status(route.status if 300 <= route.status < 400 else 302)
        self.send_header("Location", route.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _plain(self, status: int, body: bytes, head: bool, retry_after: str | None = None) -> None:
        self._status(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _status(self, status: int) -> None:
        self.send_response(status)
        with self.server.owner._lock:
            route = self.server.owner._routes.get(urlsplit(self.path).path)
            if route is not None:
                route.statuses.append(status)

    def _serve(self, route: Route, hit: int, head: bool) -> None:
        data, etag = route.version(hit)
        start = self._range_start(route, data, etag)
        if start is None:
            return  # answered 416
        self._status(206 if start else 200)
        self.send_header("Content-Type", route.content_type)
        if etag is not None:
            self.send_header("ETag", etag)
        if route.last_modified is not None:
            self.send_header("Last-Modified", route.last_modified)
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif route.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if head:
            return
        stop, fault = self.server.owner._fault(route, start, len(data))
        if route.chunked:
            for i in range(start, stop, 4096):
                chunk = data[i : min(i + 4096, stop)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if fault is None:
                self.wfile.write(b"0\r\n\r\n")
        else:
            step = _THROTTLED_PIECE if route.rate else 1 << 16
            for i in range(start, stop, step):
                piece = data[i : min(i + step, stop)]
                self.wfile.write(piece)
                route.sent += len(piece)
                if route.rate:  # a test may lift the limit mid-transfer
                    self.wfile.flush()
                    time.sleep(len(piece) / route.rate)
        if fault is None:
            return
        self.wfile.flush()
        self.close_connection = True
        if fault == "stall":
            time.sleep(route.stall_seconds)
        elif fault == "drop" and route.reset:  # linger 0: close() sends RST, not FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _range_start(self, route: Route, data: bytes, etag: str | None) -> int | None:
        """Where the answer starts: 0 (whole file), the asked offset, or None after a 416."""
        asked = self.headers.get("Range")
        if not route.ranges or asked is None:
            return 0
        match = _RANGE.match(asked.strip())
        if match is None:
            return 0
        validator = self.headers.get("If-Range")
        if (
            route.if_range
            and validator is not None
            and validator not in (etag, route.last_modified)
        ):
            return 0
        start = int(match.group(1))
        if start >= len(data):
            self._status(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return start


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FileServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection, in its own thread: over TLS when the server has a context."""
        if self.owner.tls is None:
            super().finish_request(request, client_address)
            return
        with self.owner.tls.wrap_socket(request, server_side=True) as wrapped:
            super().finish_request(wrapped, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.errors.append(repr(sys.exc_info()[1]))  # keep pytest's output clean


class FileServer:
    """In-memory files over HTTP on 127.0.0.1 (random port); start() / close().

    With `tls` (a server-side SSLContext holding a certificate for 127.0.0.1), over HTTPS.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
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
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def add(self, path: str, data: bytes, **behaviour: Any) -> str:
        """Serve data at path (a full URL on this server also works); return the full URL.

        behaviour: any field of :class:`Route` before `hits` (status, fail_first, fail_status,
        content_type, close_after, chunked, no_length, delay, retry_after, fail_hits, etag,
        last_modified, ranges, if_range, drop_at, reset, stall_at, stall_seconds,
        replace_after, replacement, replacement_etag, location, rate).
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

    def _begin(
        self, path: str, target: str, range_headers: tuple[str | None, str | None]
    ) -> tuple[Route | None, int]:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            route = self._routes.get(path)
            if route is None:
                return None, 0
            route.hits += 1
            route.requests.append(target)
            route.range_headers.append(range_headers)
            return route, route.hits

    def _fault(self, route: Route, start: int, end: int) -> tuple[int, str | None]:
        """Where an answer from `start` stops (`end`, or an offset of a fault it uses up)."""
        with self._lock:
            stop, fault = end, None
            if route.close_after is not None and route.close_after < stop:
                stop, fault = max(route.close_after, start), "close"
            for kind, offsets in (("drop", route.drop_at), ("stall", route.stall_at)):
                reached = [at for at in offsets if start <= at < stop]
                if reached:
                    stop, fault = min(reached), kind
            if fault in ("drop", "stall"):
                (route.drop_at if fault == "drop" else route.stall_at).remove(stop)
            return stop, fault

    def _end(self, route: Route | None, started: float) -> None:
        with self._lock:
            self._active -= 1
            if route is not None:
                route.spans.append((started, time.monotonic()))
