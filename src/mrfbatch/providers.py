"""Provider groups: kept on disk until we know which ones the written rates reference.

`provider_references` may come before `in_network` (so we cannot yet tell which groups are
needed) or after it (then unneeded entries are dropped as they come). Either way each kept
entry is appended, as its undecoded JSON text, to a spill file beside the outputs; memory holds
neither reference text nor an entry per reference. At the end one pass over the file decodes
the entries written rates reference and yields their provider rows in file order (through
`mrfbatch.provider_rows`: entries of the usual shape go from their text straight into Arrow
buffers, in C).
References that give a `location` instead of groups are fetched before that pass, each distinct
URL once, several at a time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from mrfbatch import _rows
from mrfbatch.engines import DEFAULT_MAX_VALUE_MB, MB, Element
from mrfbatch.provider_rows import ProviderRows, read_reference
from mrfbatch.redact import redact_url
from mrfbatch.remote import FAILURES_LISTED, RemoteFailure, RemoteFetcher, in_order
from mrfbatch.tables import Group, Quality, group_key
from mrfbatch.transport import TransportSettings
from mrfbatch.urls import resolve_reference
from mrfbatch.writers import naming_errors

log = logging.getLogger(__name__)

_DECODE = msgspec.json.Decoder(float_hook=Decimal)

# The spill file is a log of records: a header (kind, key length, payload length), the group
# key as UTF-8, then the payload: a reference's JSON text, or an inline group list, pickled.
_HEADER = struct.Struct("<BII")
_REFERENCE = 0  # a provider_references entry that cannot name a location
_MAY_LOCATE = 1  # one whose text has `"location"` or a \u escape (which could spell the key)
_INLINE = 2
_FULL = -1  # not a record: _records says that a batch of rows is full
_WRITE_BUFFER = 1 << 20
_READ_CHUNK = 1 << 20  # spill-file bytes read at a time (more for a larger record)
_ROWS_PER_BATCH = 16_384  # provider rows per `columns` batch


@dataclass
class RemoteOutcome:
    """What fetching the remote provider-reference files came to."""

    fetched: int = 0
    failed: int = 0
    # whether a failed one may be read on another try (False: none can, or none failed)
    retryable: bool = False
    warnings: list[str] = field(default_factory=list)  # one sentence when some failed
    # {"url", "error", "retryable"} of the first FAILURES_LISTED that failed
    failures: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    resumes: int = 0


class ProviderStore:
    """Spill-to-disk store of provider groups, keyed by their join key.

    During the stream: `add_references` and `add_inline`. At the end, in this order:
    `fetch_remote`, `columns` (consumed), `unresolved`, then `close`.
    """

    def __init__(self, path: Path, network_id: str, quality: Quality):
        self.path = path
        self.network_id = network_id
        self.quality = quality
        self._file = path.open("w+b")
        self._buffer = bytearray()  # records not yet written, up to _WRITE_BUFFER bytes
        self._log_end: int | None = None  # set when the log is complete; appends end there
        self._may_locate = False  # some stored reference may name a location
        self._counted = False  # the referenced entries' quality has been counted
        self._urls: dict[str, str] = {}  # location as written -> the URL it names
        self._remote: dict[str, tuple[int, int]] = {}  # URL -> its pickled groups
        self._defined: set[str] | None = None

    def add_references(
        self, text: bytes | bytearray, found: list[Element], only: set[str] | None = None
    ) -> None:
        """Store `provider_references` entries, each as its JSON text, undecoded.

        `found` lists them in file order as (start, end, key_start, key_end, flags): the entry
        is text[start:end], its provider_group_id's JSON text text[key_start:key_end] (-1, -1:
        none); `flags` other than 0 (`mrfbatch._jsonscan`'s) leave it to Python. An entry is
        decoded only if a written rate references it (`columns`), so the many references a
        whitelist never needs cost a key look-up and a write. With `only` (every needed key is
        known already), an entry whose key is not in it is dropped.

        Entries whose id's text is its key (most integers and decimals, strings without
        escapes) are written in C, without a Python object per entry; Python decodes the id of
        the others, and counts an entry with no usable id, or that is not an object.
        """
        if self._log_end is not None:
            raise RuntimeError("provider groups added after the store was read")
        at = 0
        while at < len(found):
            at, located = _rows.spill_references(text, found, at, only, self._buffer, _WRITE_BUFFER)
            self._may_locate = self._may_locate or bool(located)
            if len(self._buffer) >= _WRITE_BUFFER:
                self._flush()
                continue
            if at < len(found):
                self._add_entry(text, found[at], only)
                at += 1

    def _add_entry(self, text: bytes | bytearray, entry: Element, only: set[str] | None) -> None:
        """`add_references` of one entry the C writer leaves to Python."""
        start, end, key_start, key_end, _ = entry
        with memoryview(text) as view:
            if text[start] != 0x7B:  # "{"
                value = _DECODE.decode(view[start:end])
                self.quality.invalid(f"provider_references: entry is not an object: {value!r:.40}")
                return
            group_id = None if key_start < 0 else _DECODE.decode(view[key_start:key_end])
            raw = bytes(view[start:end])
        if type(group_id) is int:
            gid = str(group_id)  # the usual case, without a call
        else:
            try:
                gid = group_key(group_id)
            except ValueError as exc:
                self.quality.invalid(f"provider_references.provider_group_id: {exc}")
                return
        if only is not None and gid not in only:
            return
        kind = _REFERENCE
        if b'"location"' in raw or b"\\" in raw and b"\\u" in raw:  # memchr first: fast
            kind = _MAY_LOCATE
            self._may_locate = True
        self._append(kind, gid, raw)

    def add_inline(self, key: str, groups: list[Group]) -> None:
        """Store an inline group list (given inside a negotiated rate) under its generated key."""
        self._append(_INLINE, key, pickle.dumps(groups, pickle.HIGHEST_PROTOCOL))

    def _append(self, kind: int, gid: str, payload: bytes) -> None:
        if self._log_end is not None:
            raise RuntimeError("provider groups added after the store was read")
        key = gid.encode("utf-8", "surrogatepass")
        self._buffer += _HEADER.pack(kind, len(key), len(payload))
        self._buffer += key
        self._buffer += payload
        if len(self._buffer) >= _WRITE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            with naming_errors(self.path):
                self._file.write(self._buffer)
            self._buffer = bytearray()

    def _complete(self) -> int:
        """Where the log ends; nothing is added to it after this."""
        if self._log_end is None:
            self._flush()
            with naming_errors(self.path):
                self._file.flush()
            self._log_end = self._file.tell()
        return self._log_end

    def fetch_remote(
        self,
        referenced: set[str],
        settings: TransportSettings,
        max_bytes: int = DEFAULT_MAX_VALUE_MB * MB,
        base: str = "",
    ) -> RemoteOutcome:
        """Fetch the distinct `location`s of referenced groups; failures become warnings.
        `base` is the URL the file was read from: a relative location is relative to it
        (mrfbatch.urls.resolve_reference).

        A remote file is held whole once read, like a value: one with more than `max_bytes`
        of JSON is given up with a warning (`max_value_mb`) as soon as it passes the limit.

        Finding them decodes the referenced entries once, counting what they hold, before the
        remote files are read and counted; `columns` then decodes them again without counting.
        """
        outcome = RemoteOutcome()
        if not self._may_locate:
            return outcome
        needed: dict[str, None] = {}  # in order of first use
        for kind, _, payload in _records(self._file.fileno(), self._complete(), referenced):
            if kind != _INLINE:
                source, _, _, location = read_reference(payload, self.quality)
                if source == "remote" and location is not None:
                    url = self._urls.get(location)
                    if url is None:  # entries of one file often share a location
                        url = self._urls[location] = resolve_reference(location, base)
                    needed[url] = None
        self._counted = True
        locations = list(needed)
        if not locations:
            return outcome
        log.info("fetching %d remote provider-reference files", len(locations))
        fetcher = RemoteFetcher(settings, self.quality, max_bytes)
        for location, result in in_order(fetcher.fetch, locations, settings.remote_concurrency):
            if isinstance(result, RemoteFailure):
                outcome.failed += 1
                outcome.retryable = outcome.retryable or result.retryable
                if len(outcome.failures) < FAILURES_LISTED:
                    outcome.failures.append(
                        {
                            "url": redact_url(location),
                            "error": result.reason,
                            "retryable": result.retryable,
                        }
                    )
                    log.warning("remote provider-reference file not read: %s", result.reason)
                continue
            outcome.fetched += 1
            blob = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
            self._remote[location] = (self._file.seek(0, os.SEEK_END), len(blob))
            with naming_errors(self.path):
                self._file.write(blob)
        with naming_errors(self.path):
            self._file.flush()  # read back with os.pread
        outcome.retries, outcome.resumes = fetcher.stats.retries, fetcher.stats.resumes
        if outcome.failed:
            unlisted = outcome.failed - len(outcome.failures)
            outcome.warnings.append(
                f"{outcome.failed} of {len(locations)} remote provider-reference files could not "
                f"be fetched; their groups have no provider rows (first: "
                f"{outcome.failures[0]['error']}); remote_failures names "
                f"{f'the first {len(outcome.failures)}' if unlisted else 'each'} and why"
            )
            if unlisted:
                log.warning("%d more remote provider-reference files not read", unlisted)
        return outcome

    def columns(self, referenced: set[str]) -> Iterator[pa.RecordBatch]:
        """Provider rows of every stored group that is inline or referenced, in file order.

        Record batches of PROVIDERS_SCHEMA of at least `_ROWS_PER_BATCH` rows (the last may be
        shorter).
        """
        quality = Quality() if self._counted else self.quality  # count each entry once
        rows = ProviderRows(self.network_id)
        defined: set[str] = set()
        cached: tuple[str, Sequence[Group]] | None = None  # remote entries often share files
        gc_was_enabled = gc.isenabled()
        gc.disable()  # decoded entries hold no cycles; collections would only cost time
        try:
            # References of the usual shape become rows in C (`ProviderRows.add_records`):
            # only the others come out of _records.
            log_end = self._complete()
            for kind, gid, payload in _records(
                self._file.fileno(), log_end, referenced, rows, defined
            ):
                if kind == _FULL:
                    yield rows.take()
                    continue
                if kind == _INLINE:
                    source, names, groups, location = "inline", None, pickle.loads(payload), None
                    if gid in referenced:
                        defined.add(gid)
                else:
                    source, names, groups, location = read_reference(payload, quality)
                    defined.add(gid)
                if groups is None:
                    url = self._urls.get(location) if location is not None else None
                    if url not in self._remote:
                        continue  # the fetch failed (a warning says so)
                    if cached is None or cached[0] != url:
                        cached = (url, self._remote_groups(url))
                    groups = cached[1]
                rows.add(gid, groups, names, source)
                if rows.count >= _ROWS_PER_BATCH:
                    yield rows.take()
            if rows.count:
                yield rows.take()
        finally:
            if gc_was_enabled:
                gc.enable()
        self._defined = defined
        self._counted = True

    def _remote_groups(self, location: str) -> Sequence[Group]:
        offset, size = self._remote[location]
        groups: list[Group] = pickle.loads(os.pread(self._file.fileno(), size, offset))
        return groups

    def unresolved(self, referenced: set[str]) -> int:
        """How many referenced keys no stored entry defines (known once `columns` has run)."""
        if self._defined is None:
            raise RuntimeError("unresolved() is known only after columns() has been consumed")
        return len(referenced) - len(self._defined)

    def close(self) -> None:
        """Close and delete the spill file; a write that fails now (a full disk) is moot."""
        try:
            with contextlib.suppress(OSError):
                self._file.close()
        finally:
            self.path.unlink(missing_ok=True)


def _records(
    fd: int,
    end: int,
    keys: set[str],
    rows: ProviderRows | None = None,
    defined: set[str] | None = None,
) -> Iterator[tuple[int, str, memoryview]]:
    """(kind, key, payload) of each inline record, and each reference whose key is in `keys`,
    in the first `end` bytes of the spill file (a reference whose key is not costs no copy).

    With `rows`, the references it can take from their text become rows without being yielded
    (their keys go into `defined`), and (_FULL, "", empty) says that a batch is full.
    """
    data, view = b"", memoryview(b"")
    base = at = 0  # data holds the file from offset `base`; the next record is at data[at]
    header = _HEADER.size
    while base + at < end:
        if rows is not None and defined is not None:
            at, full = rows.add_records(data, at, end - base, keys, defined, _ROWS_PER_BATCH)
            if full:
                yield _FULL, "", view[:0]
                continue
            if base + at >= end:
                return
        if at + header > len(data):
            data, base, at = _read_more(fd, data, base, at, header)
            view = memoryview(data)
        kind, key_size, size = _HEADER.unpack_from(data, at)
        stop = at + header + key_size + size
        if stop > len(data):
            data, base, at = _read_more(fd, data, base, at, stop - at)
            view = memoryview(data)
            stop = header + key_size + size
        key_end = at + header + key_size
        key = str(data[at + header : key_end], "utf-8", "surrogatepass")
        if kind == _INLINE or key in keys:
            yield kind, key, view[key_end:stop]
        at = stop


def _read_more(fd: int, data: bytes, base: int, at: int, need: int) -> tuple[bytes, int, int]:
    """data[at:] and what follows it in the file, at least `need` bytes; its new base and at."""
    more = data[at:] + os.pread(fd, max(_READ_CHUNK, need), base + len(data))
    if len(more) < need:
        raise RuntimeError(f"provider spill file ends early at byte {base + len(data)}")
    return more, base + at, 0
