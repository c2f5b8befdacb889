"""Provider groups: kept on disk until we know which ones the written rates reference.

`provider_references` may come before `in_network` (so we cannot yet tell which groups are
needed) or after it. Either way the groups go to a SQLite file beside the outputs instead of a
dict in memory; at the end only referenced groups are written. References that give a
`location` instead of groups are fetched then, each distinct URL once, several at a time.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from mrfbatch.compression import DecodedStream
from mrfbatch.errors import MrfError, UnreachableError
from mrfbatch.network_ids import redact_url
from mrfbatch.rows import (
    REFERENCE_KEYS,
    Columns,
    Group,
    Quality,
    group_key,
    parse_groups,
    provider_columns,
    text_list,
)
from mrfbatch.transport import TransportSettings, open_source

log = logging.getLogger(__name__)

# Decimal as a JSON number, so a decoded reference round-trips to the same text.
_ENCODE = msgspec.json.Encoder(decimal_format="number")
_DECODE = msgspec.json.Decoder(float_hook=Decimal)

_HOST_FAILURE_LIMIT = 3  # connection failures after which a host's other locations are skipped


@dataclass
class RemoteOutcome:
    fetched: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


class ProviderStore:
    """Spill-to-disk store of provider groups, keyed by their join key."""

    def __init__(self, path: Path, network_id: str, quality: Quality):
        self.path = path
        self.network_id = network_id
        self.quality = quality
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE groups (
                seq INTEGER PRIMARY KEY, gid TEXT, source TEXT, network_name TEXT,
                groups TEXT, location TEXT, raw BLOB
            );
            CREATE INDEX groups_gid ON groups (gid);
            """
        )
        self._db.execute("BEGIN")
        self._pending: list[tuple[str, str, str | None, str | None, str | None, bytes | None]] = []

    def add_reference(self, ref: Mapping[str, Any], only: set[str] | None = None) -> None:
        """Store one decoded `provider_references` entry (see `add_raw`)."""
        self.add_raw(ref.get("provider_group_id"), _ENCODE.encode(ref), only)

    def add_raw(self, group_id: object, raw: bytes, only: set[str] | None = None) -> None:
        """Store one `provider_references` entry as its JSON text, undecoded.

        It is decoded only if a written rate references it (`materialize`), so the many
        references a whitelist never needs cost a key look-up and a row in SQLite. With `only`
        (every needed key is known already), an entry whose key is not in it is dropped.
        """
        try:
            gid = group_key(group_id)
        except ValueError as exc:
            self.quality.invalid(f"provider_references.provider_group_id: {exc}")
            return
        if only is None or gid in only:
            self._append(gid, "pending", None, None, None, raw)

    def materialize(self, referenced: set[str]) -> None:
        """Decode the stored references that written rates use into groups or locations."""
        self._flush()
        last = 0
        while True:
            batch = self._db.execute(
                "SELECT seq, gid, raw FROM groups WHERE source = 'pending' AND seq > ? "
                "ORDER BY seq LIMIT 10000",
                (last,),
            ).fetchall()
            if not batch:
                return
            self._db.executemany(
                "UPDATE groups SET source = ?, network_name = ?, groups = ?, location = ?, "
                "raw = NULL WHERE seq = ?",
                [
                    (*self._decoded(_DECODE.decode(raw)), seq)
                    for seq, gid, raw in batch
                    if gid in referenced
                ],
            )
            last = batch[-1][0]

    def _decoded(self, ref: Mapping[str, Any]) -> tuple[str, str | None, str | None, str | None]:
        """(source, network_name, groups, location) of one reference, as stored."""
        q = self.quality
        q.check_keys(ref, REFERENCE_KEYS, "provider_references")
        names = text_list(ref.get("network_name"), q, "network_name")
        stored_names = None if names is None else _ENCODE.encode(names).decode()
        location = ref.get("location")
        if "provider_groups" in ref or not isinstance(location, str):
            if location is not None and not isinstance(location, str):
                q.invalid(f"provider_references.location: expected a URL, found {location!r:.40}")
            groups = parse_groups(ref.get("provider_groups"), q)
            return "file", stored_names, _ENCODE.encode(groups).decode(), None
        return "remote", stored_names, None, location

    def add_inline(self, groups: Mapping[str, list[Group]]) -> None:
        for key, value in groups.items():
            self._append(key, "inline", None, _ENCODE.encode(value).decode(), None, None)

    def _append(
        self,
        gid: str,
        source: str,
        names: str | None,
        groups: str | None,
        location: str | None,
        raw: bytes | None,
    ) -> None:
        self._pending.append((gid, source, names, groups, location, raw))
        if len(self._pending) >= 10_000:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany(
            "INSERT INTO groups (gid, source, network_name, groups, location, raw) "
            "VALUES (?,?,?,?,?,?)",
            self._pending,
        )
        self._pending = []

    def fetch_remote(self, referenced: set[str], settings: TransportSettings) -> RemoteOutcome:
        """Fetch the distinct `location`s of referenced groups; failures become warnings."""
        self._flush()
        locations = [
            loc
            for (loc,) in self._db.execute(
                "SELECT DISTINCT location FROM groups WHERE source = 'remote' ORDER BY seq"
            )
            if self._location_needed(loc, referenced)
        ]
        outcome = RemoteOutcome()
        if not locations:
            return outcome
        log.info("fetching %d remote provider-reference files", len(locations))
        fetcher = _RemoteFetcher(settings, self.quality)
        with ThreadPoolExecutor(max_workers=max(1, settings.remote_concurrency)) as pool:
            for location, result in zip(locations, pool.map(fetcher.fetch, locations), strict=True):
                if isinstance(result, str):
                    outcome.failed += 1
                    if len(outcome.warnings) < 10:
                        outcome.warnings.append(result)
                    continue
                outcome.fetched += 1
                self._db.execute(
                    "UPDATE groups SET groups = ? WHERE source = 'remote' AND location = ?",
                    (json.dumps(result), location),
                )
        if outcome.failed:
            first = outcome.warnings[0] if outcome.warnings else ""
            outcome.warnings.insert(
                0,
                f"{outcome.failed} of {len(locations)} remote provider-reference files could not "
                f"be fetched; their groups have no provider rows (first: {first})",
            )
            del outcome.warnings[1:]
        return outcome

    def _location_needed(self, location: str, referenced: set[str]) -> bool:
        rows = self._db.execute(
            "SELECT gid FROM groups WHERE source = 'remote' AND location = ?", (location,)
        )
        return any(gid in referenced for (gid,) in rows)

    def columns(self, referenced: set[str]) -> Iterator[tuple[Columns, int]]:
        """Provider rows of every stored group that is inline or referenced, in file order."""
        self._flush()
        cursor = self._db.execute(
            "SELECT gid, source, network_name, groups FROM groups WHERE groups IS NOT NULL "
            "ORDER BY seq"
        )
        for gid, source, names, groups in cursor:
            if source != "inline" and gid not in referenced:
                continue
            parsed = [(tuple(n), t, v, b) for n, t, v, b in _DECODE.decode(groups)]
            yield provider_columns(
                self.network_id,
                gid,
                parsed,
                None if names is None else _DECODE.decode(names),
                source,
            )

    def unresolved(self, referenced: set[str]) -> int:
        """How many referenced keys no provider reference defines."""
        self._flush()
        defined = {
            gid for (gid,) in self._db.execute("SELECT gid FROM groups") if gid in referenced
        }
        return len(referenced) - len(defined)

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)


class _RemoteFetcher:
    """Fetches provider-reference files; stops trying hosts that cannot be reached."""

    def __init__(self, settings: TransportSettings, quality: Quality):
        self.settings = TransportSettings(
            connect_timeout=settings.remote_timeout,
            read_timeout=settings.remote_timeout,
            attempts=min(settings.attempts, 2),
            backoff_seconds=settings.backoff_seconds,
        )
        self.quality = quality
        self._lock = threading.Lock()
        self._host_failures: dict[str, int] = {}

    def fetch(self, location: str) -> list[Group] | str:
        """The groups of one location, or a warning saying why there are none."""
        shown = redact_url(location)
        host = urlsplit(location).hostname or ""
        scheme = urlsplit(location).scheme.lower()
        if scheme not in ("http", "https"):
            return f"{shown}: not an http(s) URL"
        with self._lock:
            if self._host_failures.get(host, 0) >= _HOST_FAILURE_LIMIT:
                return f"{shown}: skipped, host {host} unreachable"
        try:
            with open_source(location, self.settings) as raw:
                return _read_provider_file(DecodedStream(raw), self.quality)
        except UnreachableError as exc:
            with self._lock:
                self._host_failures[host] = self._host_failures.get(host, 0) + 1
            return str(exc)
        except MrfError as exc:
            return f"{shown}: {exc}"


def _read_provider_file(stream: DecodedStream, quality: Quality) -> list[Group]:
    """The groups of a provider-reference file (schema 1.x): {"provider_groups": [...], ...}.

    Streamed with ijson whichever engine runs: these files are small and few.
    """
    import ijson

    from mrfbatch.engines.reference import json_error

    try:
        groups = list(ijson.items(stream, "provider_groups.item", use_float=False))
    except ijson.JSONError as exc:
        raise json_error(exc, stream) from exc
    return parse_groups(groups, quality)
