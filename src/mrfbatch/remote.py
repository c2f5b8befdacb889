"""Remote provider-reference files: the `location` of a `provider_references` entry, fetched
while the in-network file's rates wait, several at a time and each held whole once read."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar
from urllib.parse import urlsplit

from mrfbatch.compression import DecodedStream, RawReader
from mrfbatch.engines import megabytes
from mrfbatch.errors import MrfError, UnreachableError, ValueTooLargeError
from mrfbatch.redact import redact_text, redact_url
from mrfbatch.tables import Group, Quality, parse_groups
from mrfbatch.transport import TransferStats, TransportSettings, open_source

HOST_FAILURE_LIMIT = 3  # connection failures after which a host's other locations are skipped
FAILURES_LISTED = 100  # failed locations listed one by one (status.json's remote_failures)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RemoteFailure:
    """Why a location gave no groups: one sentence naming it, and whether trying again may
    succeed (a connection failure, a 5xx) or cannot (an HTTP 404, invalid JSON, too large)."""

    reason: str
    retryable: bool


def in_order(
    fetch: Callable[[str], T], locations: Iterable[str], workers: int
) -> Iterator[tuple[str, T]]:
    """(location, fetch(location)) for each location, in their order, `workers` at a time.

    At most twice `workers` fetches are started and not yet taken. `ThreadPoolExecutor.map`
    starts every one at once and keeps each result until those before it are taken: behind one
    slow early file, every other file's groups waited in memory together.
    """
    workers = max(1, workers)
    todo = iter(locations)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        started: deque[tuple[str, Future[T]]] = deque(
            (location, pool.submit(fetch, location)) for location in islice(todo, 2 * workers)
        )
        while started:
            location, future = started.popleft()
            result = future.result()
            started.extend((nxt, pool.submit(fetch, nxt)) for nxt in islice(todo, 1))
            yield location, result


class RemoteFetcher:
    """Fetches provider-reference files; stops trying hosts that cannot be reached.

    Each file goes through the transport as an in-network file does (retries, resumes, a
    proxy), with `remote_timeout` as its connect and read timeouts; `stats` adds up the
    retries and resumes of every file.
    """

    def __init__(self, settings: TransportSettings, quality: Quality, max_bytes: int):
        self.max_bytes = max_bytes
        self.settings = dataclasses.replace(
            settings, connect_timeout=settings.remote_timeout, read_timeout=settings.remote_timeout
        )
        self.quality = quality
        self.stats = TransferStats()
        self._lock = threading.Lock()
        self._host_failures: dict[str, int] = {}

    def fetch(self, location: str) -> list[Group] | RemoteFailure:
        """The groups of one location, or why there are none."""
        shown = redact_url(location)
        host = urlsplit(location).hostname or ""
        scheme = urlsplit(location).scheme.lower()
        if scheme not in ("http", "https"):
            return RemoteFailure(f"{shown}: not an http(s) URL", retryable=False)
        with self._lock:
            if self._host_failures.get(host, 0) >= HOST_FAILURE_LIMIT:
                return RemoteFailure(f"{shown}: skipped, host {host} unreachable", retryable=True)
        stats = TransferStats()
        try:
            with open_source(location, self.settings, stats) as raw:
                return read_provider_file(raw, self.quality, self.max_bytes)
        except UnreachableError as exc:
            with self._lock:
                self._host_failures[host] = self._host_failures.get(host, 0) + 1
            return RemoteFailure(redact_text(str(exc), [location]), exc.retryable)
        except MrfError as exc:
            text = redact_text(str(exc), [location])
            if shown not in text:  # HTTP errors name the URL
                text = f"{shown}: {text}"
            return RemoteFailure(text, exc.retryable)
        finally:
            with self._lock:
                self.stats.retries += stats.retries
                self.stats.resumes += stats.resumes


def read_provider_file(raw: RawReader, quality: Quality, max_bytes: int) -> list[Group]:
    """The groups of a provider-reference file (schema 1.x): {"provider_groups": [...], ...}.

    Streamed with ijson whichever engine runs: these files are small and few. More than
    `max_bytes` of JSON is ValueTooLargeError, raised as soon as that much has been read.
    """
    import ijson

    from mrfbatch.engines.yajl import json_error

    def check_size() -> None:
        if stream.bytes_decoded > max_bytes:
            raise ValueTooLargeError(
                f"more than {megabytes(max_bytes)} of JSON, the limit of a value held whole "
                "(max_value_mb); its groups are not read"
            )

    stream = DecodedStream(raw, on_read=check_size)
    try:
        groups = list(ijson.items(stream, "provider_groups.item", use_float=False))
    except ijson.JSONError as exc:
        raise json_error(exc, stream) from exc
    return parse_groups(groups, quality)
