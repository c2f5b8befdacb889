"""Byte streams from HTTP(S) URLs, file:// URLs and local paths.

HTTP bodies are streamed as they arrive; nothing is downloaded whole first. Failures before the
body starts (connection errors, 429 and 5xx) are retried with exponential backoff; 4xx errors
are not. A body shorter than its Content-Length is an error, never a silent short read.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from mrfbatch.errors import TransportError, UnreachableError
from mrfbatch.network_ids import redact_url

log = logging.getLogger(__name__)

USER_AGENT = "mrfbatch/0.1 (+price-transparency extractor)"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class TransportSettings:
    """How patiently to fetch.

    `attempts` counts every try of a request (so 4 means up to 3 retries) for connection errors,
    429 and 5xx answers; `backoff_seconds` is the first wait, doubled each retry, with jitter.
    Remote provider-reference files use `remote_timeout` and at most `remote_concurrency`
    requests at a time.
    """

    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    attempts: int = 4
    backoff_seconds: float = 1.0
    remote_concurrency: int = 8
    remote_timeout: float = 30.0


class ByteSource:
    """A readable stream of raw (possibly compressed) bytes that counts what it delivered."""

    def __init__(
        self,
        fileobj: BinaryIO,
        description: str,
        expected_length: int | None = None,
        connection: http.client.HTTPConnection | None = None,
    ):
        self._f = fileobj
        self._connection = connection
        self.description = description
        self.expected_length = expected_length
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._f.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(
                f"reading {self.description} failed after {self.bytes_read} bytes: "
                f"{_describe_exception(exc)}"
            ) from exc
        self.bytes_read += len(data)
        if not data and self.expected_length is not None and self.bytes_read < self.expected_length:
            raise TransportError(
                f"{self.description} ended after {self.bytes_read} of {self.expected_length} bytes "
                "announced by Content-Length: the connection was closed early"
            )
        return data

    def close(self) -> None:
        self._f.close()
        if self._connection is not None:  # closing a keep-alive response leaves the socket open
            self._connection.close()

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_source(url: str, settings: TransportSettings | None = None) -> ByteSource:
    """Open `url` (http, https, file, or a local path) for streaming reads."""
    settings = settings or TransportSettings()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _open_http(url, settings)
    if scheme == "file":
        return _open_file(Path(url2pathname(urlsplit(url).path)))
    if scheme and len(scheme) > 1:
        raise TransportError(f"unsupported URL scheme {scheme!r} in {redact_url(url)}")
    return _open_file(Path(url))


def _open_file(path: Path) -> ByteSource:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise TransportError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise TransportError(f"{path} is a directory, expected a file") from None
    except OSError as exc:
        raise TransportError(f"cannot open {path}: {exc}") from exc
    return ByteSource(f, str(path), expected_length=None)


def _open_http(url: str, settings: TransportSettings) -> ByteSource:
    shown = redact_url(url)
    attempt = 0
    while True:
        attempt += 1
        try:
            response, conn, host = _request(url, settings)
        except _Retryable as exc:
            if attempt >= settings.attempts:
                error = UnreachableError if exc.unreachable else TransportError
                raise error(
                    f"{exc.message} (gave up after {attempt} attempts) for {shown}"
                ) from None
            wait = exc.retry_after or _backoff(settings.backoff_seconds, attempt)
            log.info("%s for %s; retry %d in %.1f s", exc.message, shown, attempt, wait)
            time.sleep(wait)
            continue
        length = _content_length(response)
        return ByteSource(response, f"{shown} (host {host})", length, conn)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.unreachable = unreachable


def _request(
    url: str, settings: TransportSettings
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """One GET, following redirects; raises _Retryable or TransportError."""
    for _ in range(_MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        host = parts.hostname or ""
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(host, parts.port, timeout=settings.connect_timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(
                "GET",
                target,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
            if conn.sock is not None:
                conn.sock.settimeout(settings.read_timeout)
            response = conn.getresponse()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise TransportError(f"TLS certificate of host {host} rejected: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            message = f"connection to host {host} failed: {_describe_exception(exc)}"
            raise _Retryable(message, unreachable=True) from exc
        status = response.status
        if status in _REDIRECTS:
            location = response.getheader("Location")
            response.close()
            conn.close()
            if not location:
                raise TransportError(f"HTTP {status} from host {host} without a Location header")
            url = urljoin(url, location)
            continue
        if status == 200:
            return response, conn, host
        reason = f"HTTP {status} {response.reason} from host {host}"
        retry_after = _retry_after(response.getheader("Retry-After"))
        response.close()
        conn.close()
        if status in _RETRY_STATUSES:
            raise _Retryable(reason, retry_after)
        raise TransportError(f"{reason} for {redact_url(url)}")
    raise TransportError(f"more than {_MAX_REDIRECTS} redirects for {redact_url(url)}")


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    if value is None or response.getheader("Content-Encoding", "identity") != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _backoff(base: float, attempt: int) -> float:
    return float(base * 2 ** (attempt - 1) * random.uniform(0.8, 1.2))


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror or exc})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"incomplete read ({len(exc.partial)} bytes of a chunk)"
    text = str(exc) or type(exc).__name__
    return text if not isinstance(exc, OSError) or not exc.strerror else exc.strerror
