"""Provider groups: kept on disk until we know which ones the written rates reference.

`provider_references` may come before `in_network` (so we cannot yet tell which groups are
needed) or after it (then unneeded entries are dropped as they come). Either way each kept
entry is appended, as its undecoded JSON text, to a spill file beside the outputs; memory holds
neither reference text nor an entry per reference. At the end one pass over the file decodes
the entries written rates reference and yields their provider rows in file order (entries of
the usual shape go from their text straight into Arrow buffers, in C: mrfbatch._rows).
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from mrfbatch.engines import DEFAULT_MAX_VALUE_MB, MB, Element
from mrfbatch.remote import RemoteFetcher, in_order
from mrfbatch.tables import (
    PROVIDERS_SCHEMA,
    REFERENCE_KEYS,
    Group,
    Quality,
    group_key,
    owner_indices,
    parse_groups,
    repeat,
    take,
    text_list,
)
from mrfbatch.transport import TransportSettings
from mrfbatch.writers import naming_errors

try:
    from mrfbatch import _rows
except ImportError:  # the C extension did not build (no compiler): rows are made in Python
    _rows = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Decimal as a JSON number, so a decoded reference round-trips to the same text.
_ENCODE = msgspec.json.Encoder(decimal_format="number")
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
_NO_NPI = (0,)
_GROUP_NPIS = itemgetter(0)
_NETWORK_NAMES = PROVIDERS_SCHEMA.field("network_name").type

_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


# The usual shape of a provider reference, decoded without a call per value. Anything else
# (an unknown key, a number where text belongs, a fraction as NPI, a missing tin) fails to
# validate and goes through `_decoded`, which converts and counts it.
class _Tin(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    type: str | None = None
    value: str | None = None
    business_name: str | None = None


class _Group(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    tin: _Tin
    npi: list[_Int64] | None = None


class _Reference(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    provider_group_id: msgspec.Raw = msgspec.Raw()  # the key comes from the engine
    provider_groups: list[_Group] | msgspec.UnsetType = msgspec.UNSET
    network_name: list[str] | None = None
    location: str | None = None


_TYPED = msgspec.json.Decoder(_Reference)

# What one stored entry stands for: (source, network_name, groups, location); `groups` is
# None for a `remote` entry, whose groups are fetched from `location`.
_Entry = tuple[str, list[str] | None, Sequence[Group] | None, str | None]


@dataclass
class RemoteOutcome:
    fetched: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


class ProviderStore:
    """Spill-to-disk store of provider groups, keyed by their join key.

    During the stream: `add_raw`, `add_found` or `add_reference`, and `add_inline`. At the end,
    in this order: `fetch_remote`, `columns` (consumed), `unresolved`, then `close`.
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
        self._remote: dict[str, tuple[int, int]] = {}  # location -> its pickled groups
        self._defined: set[str] | None = None

    def add_reference(self, ref: Mapping[str, Any], only: set[str] | None = None) -> None:
        """Store one decoded `provider_references` entry (see `add_raw`)."""
        self.add_raw(ref.get("provider_group_id"), _ENCODE.encode(ref), only)

    def add_raw(self, group_id: object, raw: bytes, only: set[str] | None = None) -> None:
        """Store one `provider_references` entry as its JSON text, undecoded.

        It is decoded only if a written rate references it (`columns`), so the many references
        a whitelist never needs cost a key look-up and a write. With `only` (every needed key
        is known already), an entry whose key is not in it is dropped.
        """
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

    def add_found(
        self,
        text: bytearray,
        found: list[Element],
        at: int,
        largest: int,
        only: set[str] | None = None,
    ) -> int:
        """`add_raw` for the provider_references entries the C scanner found, from found[at] on:
        text[start:end], with its provider_group_id's JSON text at text[key_start:key_end].

        Takes them up to the first that is not plain (flags set, no id, not an object, more
        than `largest` bytes) and returns its index, or len(found): the engine decodes that one.
        The same records as one `add_raw` per entry. Entries whose id's text is its key (most
        integers and decimals, strings without escapes) are written in C when the extension is
        built, without a Python object per entry; add_raw takes the others.
        """
        if self._log_end is not None:
            raise RuntimeError("provider groups added after the store was read")
        while at < len(found):
            if _rows is not None:
                at, located = _rows.spill_references(
                    text, found, at, largest, only, self._buffer, _WRITE_BUFFER
                )
                self._may_locate = self._may_locate or bool(located)
            if len(self._buffer) >= _WRITE_BUFFER:
                self._flush()
                continue
            if at == len(found):
                break
            start, end, key_start, key_end, flags = found[at]
            if flags or key_start < 0 or text[start] != 0x7B or end - start > largest:
                return at
            with memoryview(text) as view:  # an id the C writer leaves to Python, or no C
                self.add_raw(_DECODE.decode(view[key_start:key_end]), bytes(view[start:end]), only)
            at += 1
        return at

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
    ) -> RemoteOutcome:
        """Fetch the distinct `location`s of referenced groups; failures become warnings.

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
                source, _, _, location = _decoded_text(payload, self.quality)
                if source == "remote" and location is not None:
                    needed[location] = None
        self._counted = True
        locations = list(needed)
        if not locations:
            return outcome
        log.info("fetching %d remote provider-reference files", len(locations))
        fetcher = RemoteFetcher(settings, self.quality, max_bytes)
        for location, result in in_order(fetcher.fetch, locations, settings.remote_concurrency):
            if isinstance(result, str):
                outcome.failed += 1
                if len(outcome.warnings) < 10:
                    outcome.warnings.append(result)
                continue
            outcome.fetched += 1
            blob = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
            self._remote[location] = (self._file.seek(0, os.SEEK_END), len(blob))
            with naming_errors(self.path):
                self._file.write(blob)
        with naming_errors(self.path):
            self._file.flush()  # read back with os.pread
        if outcome.failed:
            first = outcome.warnings[0] if outcome.warnings else ""
            outcome.warnings.insert(
                0,
                f"{outcome.failed} of {len(locations)} remote provider-reference files could not "
                f"be fetched; their groups have no provider rows (first: {first})",
            )
            del outcome.warnings[1:]
        return outcome

    def columns(self, referenced: set[str]) -> Iterator[pa.RecordBatch]:
        """Provider rows of every stored group that is inline or referenced, in file order.

        Record batches of PROVIDERS_SCHEMA of at least `_ROWS_PER_BATCH` rows (the last may be
        shorter).
        """
        quality = Quality() if self._counted else self.quality  # count each entry once
        rows = provider_rows(self.network_id)
        defined: set[str] = set()
        cached: tuple[str, Sequence[Group]] | None = None  # remote entries often share files
        gc_was_enabled = gc.isenabled()
        gc.disable()  # decoded entries hold no cycles; collections would only cost time
        try:
            # References of the usual shape become rows in C (NativeProviderRows): only the
            # others come out of _records.
            native = rows if isinstance(rows, NativeProviderRows) else None
            log_end = self._complete()
            for kind, gid, payload in _records(
                self._file.fileno(), log_end, referenced, native, defined
            ):
                if kind == _FULL:
                    yield rows.take()
                    continue
                if kind == _INLINE:
                    source, names, groups, location = "inline", None, pickle.loads(payload), None
                    if gid in referenced:
                        defined.add(gid)
                else:
                    source, names, groups, location = _decoded_text(payload, quality)
                    defined.add(gid)
                if groups is None:
                    if location not in self._remote:
                        continue  # the fetch failed (a warning says so)
                    if cached is None or cached[0] != location:
                        cached = (location, self._remote_groups(location))
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


def provider_rows(network_id: str) -> ProviderRows | NativeProviderRows:
    """Rows gathered in C when the extension is built, else in Python (the same rows)."""
    return ProviderRows(network_id) if _rows is None else NativeProviderRows(network_id)


class ProviderRows:
    """Provider rows of many group lists, gathered until taken as a record batch.

    The rows are kept as the lists they come from: Arrow repeats a group's TIN for each of its
    NPIs, and a list's id, network names and source for each of its rows.
    """

    def __init__(self, network_id: str):
        self.network_id = network_id
        self.count = 0
        self._start()

    def _start(self) -> None:
        self._groups: list[Group] = []
        self._sizes: list[int] = []  # groups per list
        self._group_ids: list[str] = []
        self._network_names: list[list[str] | None] = []
        self._sources: list[str] = []

    def add(
        self,
        group_id: str,
        groups: Sequence[Group],
        network_name: list[str] | None,
        source: str,
    ) -> None:
        """One row per (group, NPI) of one group list."""
        self._groups += groups
        self._sizes.append(len(groups))
        self._group_ids.append(group_id)
        self._network_names.append(network_name)
        self._sources.append(source)
        self.count += sum(map(len, map(_GROUP_NPIS, groups)))

    def take(self) -> pa.RecordBatch:
        """The rows gathered so far, as a record batch of PROVIDERS_SCHEMA; starts afresh."""
        groups, n = self._groups, self.count
        npis, tin_types, tin_values, business_names = (
            zip(*groups, strict=True) if groups else [()] * 4
        )
        batch = _provider_batch(
            self.network_id,
            pa.array(chain.from_iterable(npis), pa.int64(), size=n),
            owner_indices(list(map(len, npis))),
            owner_indices(self._sizes),
            [pa.array(values, pa.string()) for values in (tin_types, tin_values, business_names)],
            [
                pa.array(self._group_ids, pa.string()),
                pa.array(self._network_names, _NETWORK_NAMES),
                pa.array(self._sources, pa.string()),
            ],
        )
        self.count = 0
        self._start()
        return batch


class NativeProviderRows:
    """The same rows as ProviderRows, gathered by the C extension into Arrow buffers.

    `add_text` takes a reference of the usual shape (what `_decoded_text` decodes without
    counting anything) straight from its JSON text: no Python object per group or NPI.
    """

    def __init__(self, network_id: str):
        self.network_id = network_id
        self._start()

    def _start(self) -> None:
        assert _rows is not None
        self._c = _rows.ProviderRows()

    @property
    def count(self) -> int:
        """Rows gathered so far."""
        return self._c.count

    def add(
        self,
        group_id: str,
        groups: Sequence[Group],
        network_name: list[str] | None,
        source: str,
    ) -> None:
        """One row per (group, NPI) of one group list."""
        self._c.add_groups(groups, network_name, group_id, source)

    def add_text(self, group_id: str, text: bytes | memoryview) -> bool:
        """The rows of a reference's JSON text if it has the usual shape; else False."""
        return self._c.add_text(text, group_id)

    def add_records(
        self, data: bytes, at: int, end: int, keys: set[str], defined: set[str]
    ) -> tuple[int, bool]:
        """`add_text` for the spill records in data[at:end] whose key is in `keys`, adding
        their keys to `defined`, up to the first it cannot take, one not whole in data[:end],
        or a full batch: (the offset of that record, whether the batch is full)."""
        at, why = self._c.add_records(data, at, end, keys, defined, _ROWS_PER_BATCH)
        return at, why == _rows.FULL

    def take(self) -> pa.RecordBatch:
        """The rows gathered so far, as a record batch of PROVIDERS_SCHEMA; starts afresh."""
        (n, groups, lists, names), data, group_ids, sources = self._c.take()
        npi, row_group, group_list, *buffers = map(pa.py_buffer, data)
        tins = [pa.Array.from_buffers(pa.string(), groups, buffers[i : i + 3]) for i in (0, 3, 6)]
        list_valid, list_offsets, name_offsets, name_data = buffers[9:]
        network_names = pa.Array.from_buffers(
            _NETWORK_NAMES,
            lists,
            [list_valid, list_offsets],
            children=[pa.Array.from_buffers(pa.string(), names, [None, name_offsets, name_data])],
        )
        return _provider_batch(
            self.network_id,
            pa.Array.from_buffers(pa.int64(), n, [None, npi]),
            pa.Array.from_buffers(pa.int32(), n, [None, row_group]),
            pa.Array.from_buffers(pa.int32(), groups, [None, group_list]),
            tins,
            [pa.array(group_ids, pa.string()), network_names, pa.array(sources, pa.string())],
        )


def _provider_batch(
    network_id: str,
    npi: pa.Array,
    group_of_row: pa.Array,
    list_of_group: pa.Array,
    per_group: Sequence[pa.Array],
    per_list: Sequence[pa.Array],
) -> pa.RecordBatch:
    """A record batch of PROVIDERS_SCHEMA from one NPI per row, the group of each row and the
    list of each group: per group its tin_type, tin_value and business_name; per list its
    provider_group_id, network_name and source. Arrow repeats them for their rows."""
    list_of_row = take(list_of_group, group_of_row)
    group_id, network_name, source = (take(values, list_of_row) for values in per_list)
    tins = (take(values, group_of_row) for values in per_group)
    arrays = [repeat(network_id, pa.string(), len(npi)), group_id, npi, *tins, network_name, source]
    return pa.RecordBatch.from_arrays(arrays, schema=PROVIDERS_SCHEMA)


def _records(
    fd: int,
    end: int,
    keys: set[str],
    rows: NativeProviderRows | None = None,
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
            at, full = rows.add_records(data, at, end - base, keys, defined)
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


def _decoded_text(raw: bytes | memoryview, quality: Quality) -> _Entry:
    """What one stored reference stands for; only an unusual one is decoded generically."""
    try:
        ref = _TYPED.decode(raw)
    except msgspec.ValidationError:
        return _decoded(_DECODE.decode(raw), quality)
    groups = ref.provider_groups
    if groups is msgspec.UNSET:
        if ref.location is not None:
            return "remote", ref.network_name, None, ref.location
        return "file", ref.network_name, [], None
    # NPIs stay the decoded list (Group says tuple): rows only iterate over them.
    usual = [(g.npi or _NO_NPI, (t := g.tin).type, t.value, t.business_name) for g in groups]
    return "file", ref.network_name, usual, None  # type: ignore[return-value]


def _decoded(ref: Mapping[str, Any], quality: Quality) -> _Entry:
    """What one decoded reference stands for, counting what the schema does not expect."""
    q = quality
    q.check_keys(ref, REFERENCE_KEYS, "provider_references")
    names = text_list(ref.get("network_name"), q, "network_name")
    location = ref.get("location")
    if "provider_groups" in ref or not isinstance(location, str):
        if location is not None and not isinstance(location, str):
            q.invalid(f"provider_references.location: expected a URL, found {location!r:.40}")
        return "file", names, parse_groups(ref.get("provider_groups"), q), None
    return "remote", names, None, location
