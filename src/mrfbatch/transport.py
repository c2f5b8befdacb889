"""Byte streams from HTTP(S) URLs, file:// URLs and local paths.

HTTP bodies are streamed as they arrive; nothing is downloaded whole first.

- A request that fails before its body starts (connection error, 408, 429, 5xx) is retried
  with exponential backoff and jitter, or after the server's `Retry-After`, up to
  `TransportSettings.attempts` tries and `retry_seconds` of trying; other 4xx are final.
- A body that breaks (connection reset or closed early, a stall past `read_timeout`) is resumed
  where it stopped with `Range: bytes=N-`, guarded by `If-Range` (the first response's ETag,
  else its Last-Modified): the reader above never sees the break. Resumes that bring bytes go
  on for as long as they do; `stalled_resumes` in a row that bring none end the transfer.
- When the rest cannot be had from the same version of the file (the server ignores ranges or
  gives no validator, the ETag or the length changed), `read` raises `RestartFromZero`: the
  caller must discard everything read so far and start again (run_extraction does, up to
  `TransportSettings.restarts` times). Bytes of two versions are never joined.
- A body shorter than its Content-Length is never a silent short read.

Retries and resumes are logged (URLs without their query string) and counted in the
`TransferStats` given to `open_source`. Proxies are taken from the environment
(mrfbatch.proxies).
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import random
import re
import socket
import ssl
import stat
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from mrfbatch.errors import RestartFromZero, TransportError, UnreachableError
from mrfbatch.proxies import open_connection, proxy_for, tunnel_refusal
from mrfbatch.redact import redact_url
from mrfbatch.urls import http_url_problem

log = logging.getLogger(__name__)

USER_AGENT = "mrfbatch/0.1 (+price-transparency extractor)"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_MAX_RETRY_AFTER = 300.0
_MAX_BACKOFF = 120.0
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class TransportSettings:
    """How patiently to fetch.

    `attempts` counts every try of a request (so 4 means up to 3 retries) for connection errors,
    408, 429 and 5xx answers; `backoff_seconds` is the first wait, doubled each retry, with
    jitter (a `Retry-After` answer sets the wait instead, at most 300 s). A request is retried
    for at most `retry_seconds` from its first try: a wait that would end later gives up.
    A body that breaks, or sends nothing for `read_timeout` seconds, is resumed from where it
    stopped; `stalled_resumes` resumes in a row that bring no new byte give up. `restarts` is
    how often run_extraction reads a file again from the start when it cannot be resumed.
    Remote provider-reference files use `remote_timeout` and at most `remote_concurrency`
    requests at a time.
    """

    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    attempts: int = 4
    backoff_seconds: float = 1.0
    retry_seconds: float = 600.0
    stalled_resumes: int = 5
    restarts: int = 2
    remote_concurrency: int = 8
    remote_timeout: float = 30.0


@dataclass
class TransferStats:
    """What fetching took beyond one request: retried requests and resumed bodies."""

    retries: int = 0  # requests sent again after a connection error, 408, 429 or 5xx
    resumes: int = 0  # broken bodies continued with a Range request


class ByteSource:
    """A readable stream of raw (possibly compressed) bytes that counts what it delivered."""

    def __init__(
        self,
        fileobj: BinaryIO,
        description: str,
        expected_length: int | None = None,
        stats: TransferStats | None = None,
        name: str | None = None,
    ):
        self._f = fileobj
        self.description = description
        # The file's path (a URL's without its query): what its ending promises (.gz, .zip).
        self.name = description if name is None else name
        self.expected_length = expected_length
        self.bytes_read = 0
        self.stats = stats if stats is not None else TransferStats()

    def read(self, size: int) -> bytes:
        try:
            data = self._f.read(size)
        except OSError as exc:
            raise TransportError(
                f"reading {self.description} failed after {self.bytes_read} bytes: "
                f"{_describe_exception(exc)}"
            ) from exc
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_source(
    url: str, settings: TransportSettings | None = None, stats: TransferStats | None = None
) -> ByteSource:
    """Open `url` (http, https, file, or a local path) for streaming reads.

    `stats`, when given, counts the retries and resumes (pass one object to several calls to
    add them up).
    """
    settings = settings or TransportSettings()
    stats = stats if stats is not None else TransferStats()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpSource(url, settings, stats)
    if scheme == "file":
        return _open_file(Path(url2pathname(urlsplit(url).path)), stats)
    if scheme and len(scheme) > 1:
        raise TransportError(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)}", retryable=False
        )
    return _open_file(Path(url), stats)


def _open_file(path: Path, stats: TransferStats) -> ByteSource:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise TransportError(f"file {path} does not exist", retryable=False) from None
    except IsADirectoryError:
        raise TransportError(f"{path} is a directory, expected a file", retryable=False) from None
    except OSError as exc:
        raise TransportError(f"cannot open {path}: {exc}", retryable=False) from exc
    size = os.fstat(f.fileno())
    length = size.st_size if stat.S_ISREG(size.st_mode) else None  # for progress only
    return ByteSource(f, str(path), expected_length=length, stats=stats)


class HttpSource(ByteSource):
    """An HTTP(S) body that resumes itself where it broke (see the module docstring).

    `expected_length` is the whole file's length when the server said it (Content-Length of
    the first answer, or the total of a Content-Range), else None.
    """

    def __init__(self, url: str, settings: TransportSettings, stats: TransferStats):
        self._url = url
        self._shown = redact_url(url)
        self._settings = settings
        self._stalled = 0  # resumes in a row that have not brought a byte yet
        response, conn, host = _connect(url, settings, stats, {})
        name = urlsplit(url).path
        super().__init__(response, f"{self._shown} (host {host})", None, stats, name)
        self._response = response
        self._conn: http.client.HTTPConnection | None = conn
        self._adopt_first(response)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, as they arrive (one socket read: a break loses nothing read)."""
        if size <= 0:
            return b""
        while True:
            if self.expected_length is not None and self.bytes_read >= self.expected_length:
                return b""
            want = size if self._left is None else min(size, self._left)
            try:
                data = self._response.read1(want) if want else b""
            except (OSError, http.client.HTTPException) as exc:
                self._resume(
                    f"reading failed after {self.bytes_read} bytes: {_describe_exception(exc)}"
                )
                continue
            if data:
                self.bytes_read += len(data)
                if self._left is not None:
                    self._left -= len(data)
                self._stalled = 0
                return data
            short = self._shortfall()
            if short is None:
                return b""
            self._resume(short)

    def close(self) -> None:
        self._response.close()
        if self._conn is not None:  # closing a keep-alive response leaves the socket open
            self._conn.close()
            self._conn = None

    def _adopt_first(self, response: http.client.HTTPResponse) -> None:
        """Take the length and validators of a full (200) answer."""
        self.expected_length = _content_length(response)
        self._left = self.expected_length  # bytes the current answer still owes
        etag = response.getheader("ETag")
        self._etag = etag if etag and not etag.startswith("W/") else None  # strong ETags only
        self._last_modified = response.getheader("Last-Modified")
        self._validator = self._etag or self._last_modified

    def _shortfall(self) -> str | None:
        """Why an empty read is not the end of the file, or None when it is."""
        if self._left:
            total = self.expected_length
            if total is not None:
                return (
                    f"the connection was closed early: {self.bytes_read} of {total} bytes "
                    "announced by Content-Length arrived"
                )
            return f"the answer ended {self._left} bytes short of its Content-Length"
        if self.expected_length is not None and self.bytes_read < self.expected_length:
            return f"the answer ended after {self.bytes_read} of {self.expected_length} bytes"
        return None

    def _resume(self, reason: str) -> None:
        """Reconnect and continue at byte `bytes_read`, or raise why that is not possible."""
        at = self.bytes_read
        self.close()
        where = f"{self.description}: {reason}"
        if at and self._validator is None:
            raise RestartFromZero(
                f"{where}; it cannot be resumed safely: the server sent neither an ETag nor "
                "Last-Modified to check that the rest belongs to the same file"
            )
        if self._stalled >= self._settings.stalled_resumes:
            raise TransportError(
                f"{where}; gave up after {self._stalled} resumes in a row that brought no new bytes"
            )
        wait = _backoff(self._settings.backoff_seconds, self._stalled) if self._stalled else 0.0
        self._stalled += 1
        log.warning("%s; resuming from byte %d%s", where, at, f" in {wait:.1f} s" if wait else "")
        time.sleep(wait)
        headers = {"Range": f"bytes={at}-", "If-Range": self._validator or ""} if at else {}
        try:
            response, conn, _ = _connect(self._url, self._settings, self.stats, headers)
        except TransportError as exc:  # e.g. 403: the signature expired during the download
            raise type(exc)(f"{where}; resuming failed: {exc}", retryable=exc.retryable) from exc
        try:
            if at:
                self._check_partial(response, at)
            else:  # nothing was handed out yet: this answer is the first one
                self._adopt_first(response)
        except BaseException:
            response.close()
            conn.close()
            raise
        self._f = self._response = response
        self._conn = conn
        self.stats.resumes += 1
        log.info("%s: resumed at byte %d", self._shown, at)

    def _check_partial(self, response: http.client.HTTPResponse, at: int) -> None:
        """Accept a 206 answer that continues the same file at byte `at`, or raise."""
        asked = f"asked for the rest from byte {at} (If-Range: {self._validator})"
        if response.status == 200:
            raise RestartFromZero(
                f"{self.description}: {asked}, the server sent the whole file (HTTP 200): it "
                "ignores Range requests, or the file has changed; reading it from the start"
            )
        if response.status == 416:
            raise RestartFromZero(
                f"{self.description}: {asked}, the server answered 416 (range not "
                "satisfiable): the file has changed; reading it from the start"
            )
        value = response.getheader("Content-Range") or ""
        match = _CONTENT_RANGE.match(value.strip())
        if match is None or int(match.group(1)) != at:
            raise RestartFromZero(
                f"{self.description}: {asked}, the server answered 206 with Content-Range "
                f"{value!r}, which does not start at byte {at}; reading it from the start"
            )
        total = None if match.group(3) == "*" else int(match.group(3))
        changes = []
        etag = response.getheader("ETag")
        if self._etag is not None and etag is not None and etag != self._etag:
            changes.append(f"ETag {self._etag} -> {etag}")
        modified = response.getheader("Last-Modified")
        if self._last_modified and modified and modified != self._last_modified:
            changes.append(f"Last-Modified {self._last_modified} -> {modified}")
        if total is not None and self.expected_length not in (None, total):
            changes.append(f"length {self.expected_length} -> {total} bytes")
        if changes:
            raise RestartFromZero(
                f"{self.description}: the file has changed since the transfer began "
                f"({'; '.join(changes)}); reading it from the start"
            )
        if self.expected_length is None:
            self.expected_length = total
        self._left = _content_length(response)


def _connect(
    url: str, settings: TransportSettings, stats: TransferStats, headers: dict[str, str]
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """One request, retried on connection errors, 408, 429 and 5xx while patience lasts."""
    shown = redact_url(url)
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return _request(url, settings, headers)
        except _Retryable as exc:
            elapsed = time.monotonic() - started
            error = UnreachableError if exc.unreachable else TransportError
            tried = f"{attempt} attempt{'' if attempt == 1 else 's'} in {elapsed:.1f} s"
            if attempt >= settings.attempts:
                raise error(f"{exc.message} (gave up after {tried}) for {shown}") from None
            wait = exc.retry_after
            if wait is None:
                wait = _backoff(settings.backoff_seconds, attempt)
            if elapsed + wait > settings.retry_seconds:
                raise error(
                    f"{exc.message} (gave up after {tried}: "
                    f"waiting {wait:.1f} s more{' as Retry-After asks' if exc.retry_after else ''}"
                    f" would pass the retry time budget of {settings.retry_seconds:g} s) for "
                    f"{shown}"
                ) from None
            stats.retries += 1
            log.warning(
                "%s for %s; retry %d of %d in %.1f s%s",
                exc.message,
                shown,
                attempt,
                settings.attempts - 1,
                wait,
                " (Retry-After)" if exc.retry_after is not None else "",
            )
            time.sleep(wait)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.unreachable = unreachable


def _request(
    url: str, settings: TransportSettings, headers: dict[str, str]
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """One GET, following redirects; raises _Retryable or TransportError.

    Answers 200, or with a Range header also 206 and 416 (the caller decides what they mean).
    """
    accepted = {200, 206, 416} if "Range" in headers else {200}
    for _ in range(_MAX_REDIRECTS + 1):
        problem = http_url_problem(url)
        if problem:
            raise TransportError(
                f"{redact_url(url)} cannot be requested: the URL {problem}", retryable=False
            )
        proxy = proxy_for(url)
        asked = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        conn, target, asked = open_connection(url, proxy, settings.connect_timeout, asked)
        host = urlsplit(url).hostname or ""
        via = f" through proxy {proxy.shown}" if proxy else ""
        try:
            conn.request("GET", target, headers=asked)
            if conn.sock is not None:
                conn.sock.settimeout(settings.read_timeout)
            response = conn.getresponse()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise TransportError(
                f"TLS certificate of host {host} rejected: {exc}", retryable=False
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            refused = tunnel_refusal(exc, proxy, url)  # a proxy that will not open a tunnel
            if refused is not None and not refused.retryable:
                raise refused from exc
            message = f"connection to host {host}{via} failed: {_describe_exception(exc)}"
            raise _Retryable(str(refused or message), unreachable=not refused) from exc
        status = response.status
        if status in _REDIRECTS:
            location = response.getheader("Location")
            response.close()
            conn.close()
            if not location:
                raise TransportError(
                    f"HTTP {status} from host {host} without a Location header", retryable=False
                )
            url = urljoin(url, location)
            continue
        if status in accepted:
            return response, conn, host
        reason = f"HTTP {status} {response.reason} from host {host}{via}"
        retry_after = _retry_after(response.getheader("Retry-After"))
        response.close()
        conn.close()
        if status in _RETRY_STATUSES:
            raise _Retryable(reason, retry_after)
        raise TransportError(f"{reason} for {redact_url(url)}", retryable=False)
    raise TransportError(
        f"more than {_MAX_REDIRECTS} redirects for {redact_url(url)}", retryable=False
    )


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
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _backoff(base: float, attempt: int) -> float:
    """The wait before retry `attempt` (1, 2, ...): doubling from `base`, +-20 % jitter."""
    return float(min(base * 2 ** (attempt - 1), _MAX_BACKOFF) * random.uniform(0.8, 1.2))


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror or exc})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"incomplete read ({len(exc.partial)} bytes of a chunk)"
    text = str(exc) or type(exc).__name__
    return text if not isinstance(exc, OSError) or not exc.strerror else exc.strerror
