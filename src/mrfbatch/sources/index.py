"""The CMS table of contents (the "index" source): one task per file it lists.

Which files become tasks is the `file_types` setting's choice: the `in_network_files`, the
`allowed_amount_file`s, or both. An entry that cannot be used (no location, a location that
cannot be fetched, not an object) is skipped, named by its position, and the rest are kept; a
real index lists thousands of files, and one bad entry must not block them. Only an index that
leaves no file to extract is refused.

The file is streamed, one reporting structure at a time, through ijson's C coroutines. Files
that are not a table of contents (an in-network, allowed-amounts or provider-reference file, a
top-level array) are refused as soon as their top level shows it; nesting and key length are
bounded before any structure is assembled. Tasks are collected as for the other
sources (mrfbatch.tasks, mrfbatch.sources.locations).

Each task's `extra_args` holds what the index says of its file: the index's header
(`index_reporting_entity_name`, `index_reporting_entity_type`, `index_last_updated_on`,
`index_version`, each only when given; the header may come after `reporting_structure`, so the
tasks are made after the scan), `file_description`, the distinct `description`s of the
entries that list the file, joined by " | ", and `file_kind`, what the index says the file
is: `in-network` or `allowed-amounts`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
from collections.abc import Callable, Generator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ijson

from mrfbatch.compression import DecodedStream
from mrfbatch.engines.yajl import json_error, load_backend
from mrfbatch.errors import (
    CompressionError,
    JsonFormatError,
    RestartFromZero,
    SourceError,
    TransportError,
    UsageError,
)

# a task's extra_args["file_kind"]: named where status.json's file_kind is
from mrfbatch.layout import ALLOWED_AMOUNTS, IN_NETWORK
from mrfbatch.progress import ReadProgress, Snapshot
from mrfbatch.redact import redact_url
from mrfbatch.sniff import DELIMITED
from mrfbatch.sources.locations import (
    MAX_LISTED,
    local_source_file,
    location_problem,
    raise_problems,
    resolve_location,
)
from mrfbatch.sources.plans import URL_COLUMN
from mrfbatch.tasks import (
    SkippedEntry,
    SourceTasks,
    Task,
    TaskCollector,
    keyed,
)
from mrfbatch.textfile import PathLike, shorten
from mrfbatch.transport import TransportSettings, open_source
from mrfbatch.urls import resolve_reference

log = logging.getLogger(__name__)

_BUF_SIZE = 1 << 16
_MAX_DEPTH = 64  # nesting of a table of contents; its own structure needs 5
_MAX_KEY = 1000  # characters of one key of a table of contents
_FILE_HINT = "; give a file to extract as source 'url' or 'urls'"
# The index's top-level keys kept in every task's extra_args: key -> (its name there, whether
# a number is kept too, as its text: some indexes write `"version": 1.0`). A string is kept;
# null, true/false, objects and arrays are not.
_HEADER = {
    "reporting_entity_name": ("index_reporting_entity_name", False),
    "reporting_entity_type": ("index_reporting_entity_type", False),
    "last_updated_on": ("index_last_updated_on", True),
    "version": ("index_version", True),
}
# What each file_types value makes tasks of; the keys of a structure that list files.
IN_NETWORK_FILES = "in_network"  # file_types' default
_WANTED = {
    IN_NETWORK_FILES: (IN_NETWORK,),
    "allowed_amounts": (ALLOWED_AMOUNTS,),
    "both": (IN_NETWORK, ALLOWED_AMOUNTS),
}
FILE_TYPES = tuple(_WANTED)
_FILE_TYPE_OF = {IN_NETWORK: IN_NETWORK_FILES, ALLOWED_AMOUNTS: "allowed_amounts"}
_FILE_KEYS = {"in_network_files": IN_NETWORK, "allowed_amount_file": ALLOWED_AMOUNTS}
_KIND_NAMES = {IN_NETWORK: "in-network file", ALLOWED_AMOUNTS: "allowed-amount file"}
_NOT_A_TOC = {  # top-level key: (what the file looks like, what to do)
    "in_network": ("an in-network rates file", _FILE_HINT),
    "provider_references": ("an in-network rates file", _FILE_HINT),
    "out_of_network": ("an allowed-amounts file", _FILE_HINT),
    "provider_groups": ("a provider-reference file", ""),
}


def parse_index(
    path_or_url: PathLike,
    settings: TransportSettings | None = None,
    file_types: str = IN_NETWORK_FILES,
) -> list[Task]:
    """The tasks of :func:`read_index`, without the entries it skipped."""
    return read_index(path_or_url, settings, file_types).tasks


def read_index(
    path_or_url: PathLike,
    settings: TransportSettings | None = None,
    file_types: str = IN_NETWORK_FILES,
    progress_path: PathLike | None = None,
) -> SourceTasks:
    """One task per distinct file `location` of a CMS table-of-contents file, and the entries
    that could not be used.

    `file_types` (one of FILE_TYPES) says which files become tasks: `in_network` the
    `in_network_files`, `allowed_amounts` the `allowed_amount_file`s (an object or, as some
    payers write it, an array of them), `both` both. `path_or_url` is a local path or an
    http(s)/file URL; gzip, zip or plain JSON, detected from the first bytes. A relative path
    in the `location` of a local index is relative to the index's folder; in an index fetched
    by http(s), a location without a scheme is relative to the index's URL (see
    mrfbatch.urls.resolve_reference). The file is streamed, one reporting structure at a time.
    A task carries the `reporting_plans` of every structure that lists its file, and in
    `extra_args` the index's header, the file's descriptions and its kind (see the module's
    docstring).

    An entry that cannot be used (not an object, no location, a location that cannot be
    fetched) is skipped with a warning naming its position; so is a plan that is not an object
    (the structure's other plans are kept). SourceError when the file is not a table of
    contents, cannot be read, or leaves no file to extract.

    How far the read is goes to `progress_path` (when given: mrfbatch.progress.ReadProgress)
    and to the log every 10 s, as an index can be gigabytes.
    """
    if file_types not in FILE_TYPES:
        raise UsageError(f"file_types is {file_types!r}; expected one of {', '.join(FILE_TYPES)}")
    source = str(path_or_url)
    local = local_source_file(source)
    shown = redact_url(source)
    progress = ReadProgress(progress_path, functools.partial(_log_progress, shown))
    try:
        index = _read(source, shown, local, settings, file_types, progress)
    finally:
        progress.remove()
    for entry in index.skipped:
        log.warning("index %s: skipped %s", shown, entry)
    if not index.collector:
        index.refuse(file_types)
    tasks = index.collector.tasks(index.header)
    log.info(
        "index %s: %d reporting structures, %d in-network file entries, %d allowed-amount "
        "file entries; file_types %s: %d files, %d entries skipped",
        shown,
        index.structures,
        index.entries[IN_NETWORK],
        index.entries[ALLOWED_AMOUNTS],
        file_types,
        len(tasks),
        len(index.skipped),
    )
    return SourceTasks(tasks, index.skipped)


def _read(
    source: str,
    shown: str,
    local: Path | None,
    settings: TransportSettings | None,
    file_types: str,
    progress: ReadProgress,
) -> _Index:
    """The pass over the index, made again from the start when the file changed meanwhile."""
    restarts = (settings or TransportSettings()).restarts
    for attempt in range(restarts + 1):
        try:
            with open_source(source, settings) as raw:
                index = _Index(source, shown, local, _WANTED[file_types])
                index.scan(progress.watch(raw, index.count_structures))
            return index
        except RestartFromZero as exc:  # the file changed while it was read: read it again
            if attempt == restarts:
                raise SourceError(
                    f"cannot read the index: gave up after {restarts} restart"
                    f"{'' if restarts == 1 else 's'}: {exc}"
                ) from exc
            log.warning("index %s: reading it again from the start: %s", shown, exc)
        except (TransportError, CompressionError, JsonFormatError) as exc:
            hint = ""
            if DELIMITED in str(exc):  # sniff's words: a CSV where a table of contents belongs
                hint = f"; a CSV with a {URL_COLUMN} column is read as the csv source"
            raise SourceError(f"cannot read the index: {exc}{hint}") from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def _log_progress(shown: str, snapshot: Snapshot) -> None:
    structures = f"{snapshot.items_seen:,}"
    log.info("index %s: read %s; %s reporting structures", shown, snapshot.describe(), structures)


class _Index:
    """One streaming pass over a table of contents."""

    def __init__(self, source: str, shown: str, local: Path | None, wanted: tuple[str, ...]):
        self.source = source  # the index's URL or path, as given
        self.shown = shown  # the same without secrets (mrfbatch.redact)
        self.local = local  # the index file (None over http): relative locations are in its folder
        self.wanted = wanted  # the kinds of file that become tasks
        self.collector = TaskCollector()
        # a location as written -> its file, checked: a file is listed under every plan using it
        self.known: dict[str, str] = {}
        self.skipped: list[SkippedEntry] = []
        self.header: dict[str, str] = {}  # extra_args name -> the index's value, as text
        self.structures = 0
        self.entries = dict.fromkeys((IN_NETWORK, ALLOWED_AMOUNTS), 0)  # file entries by kind
        self.seen_structures = False
        self.keys: list[str] = []  # the first top-level keys, to say what a non-TOC holds

    def count_structures(self) -> int:
        """How many reporting structures are read so far."""
        return self.structures

    def scan(self, stream: DecodedStream) -> None:
        # ijson's C coroutines, chained by hand: bytes -> basic events -> _watch -> events
        # with prefixes -> reporting structures. _watch sees the basic events before they get
        # their prefix (the keys of every level, joined): those strings grow with the nesting
        # and the keys, and a buffer's events are made at once, so 30,000 nested arrays
        # (60 KB) would take 2 GB before a check of the prefixes could stop them. ijson's C
        # `items` assembles each structure far faster than Python could.
        backend = load_backend()
        found = _Found()
        structures = backend.items_basecoro(found, "reporting_structure.item")
        watch = self._watch(backend.parse_basecoro(structures).send, stream)
        next(watch)
        basic = backend.basic_parse_basecoro(watch, use_float=False)
        try:
            while True:
                chunk = stream.read(_BUF_SIZE)
                # b"" at the end: yajl checks that the JSON is complete, the coroutine ends
                with contextlib.suppress(StopIteration):
                    basic.send(chunk)
                for item in found:
                    self._structure(item)
                found.clear()
                if not chunk:
                    break
        except ijson.JSONError as exc:
            raise SourceError(_without_snippet(str(json_error(exc, stream)))) from exc
        if not self.seen_structures:
            found_keys = ", ".join(repr(k) for k in self.keys[:MAX_LISTED]) or "none"
            raise SourceError(
                f"{self.shown} is not a table of contents: it has no reporting_structure array "
                f"(top-level keys: {found_keys})"
            )

    def _watch(
        self, forward: Callable[[tuple[str, Any]], None], stream: DecodedStream
    ) -> Generator[None, tuple[str, Any], None]:
        """Forward basic events, noting the header and stopping at what is not a TOC."""
        depth = 0
        key = ""  # the top-level key whose value is being read
        while True:
            pair = yield
            event, value = pair
            if event == "map_key" and len(value) > _MAX_KEY:
                raise SourceError(
                    f"{self.shown} has a key of {len(value):,} characters (within its first "
                    f"{stream.bytes_decoded} decoded bytes); expected names of at most "
                    f"{_MAX_KEY:,}"
                )
            if depth > 1:  # inside a top-level value: only the depth matters
                if event == "start_map" or event == "start_array":
                    depth += 1
                    if depth > _MAX_DEPTH:
                        raise SourceError(
                            f"{self.shown} nests arrays and objects more than {_MAX_DEPTH} "
                            f"deep (within its first {stream.bytes_decoded} decoded bytes); a "
                            "table of contents needs 5 levels"
                        )
                elif event == "end_map" or event == "end_array":
                    depth -= 1
            elif depth == 1:
                if event == "map_key":
                    key = value
                    self._top_level_key(key)
                elif event == "end_map":
                    depth = 0
                else:
                    self._top_level_value(key, event, value)
                    if event == "start_map" or event == "start_array":
                        depth = 2
            elif event == "start_map":
                depth = 1
            else:
                kind = "an array" if event == "start_array" else "a single value"
                raise SourceError(
                    f"{self.shown} is not a table of contents: its top level is {kind}; "
                    "expected an object with a reporting_structure array"
                )
            forward(pair)

    def _top_level_value(self, key: str, event: str, value: Any) -> None:
        """The value of a top-level key, or the start of it."""
        if key in _HEADER:
            name, numbers = _HEADER[key]
            if event == "string" or (event == "number" and numbers):
                self.header[name] = str(value)  # a number: int, or Decimal (its digits)
        elif key == "reporting_structure" and event != "start_array":
            raise SourceError(
                f"{self.shown}: reporting_structure is {_event_kind(event)}; "
                "expected an array of reporting structures"
            )

    def _top_level_key(self, key: str) -> None:
        if key in _NOT_A_TOC:
            kind, hint = _NOT_A_TOC[key]
            raise SourceError(
                f"{self.shown} is not a table of contents: it looks like {kind} "
                f"(top-level key {key!r}){hint}"
            )
        if key == "reporting_structure":
            self.seen_structures = True
        if len(self.keys) < MAX_LISTED:
            self.keys.append(key)

    def refuse(self, file_types: str) -> None:
        """SourceError: the index gave no task (every wanted entry skipped, or none listed)."""
        wanted = " or ".join(_KIND_NAMES[kind] for kind in self.wanted)
        counts = "; ".join(f"{_KIND_NAMES[k]} entries: {n:,}" for k, n in self.entries.items())
        raise_problems(
            [str(entry) for entry in self.skipped],
            f"index {self.shown} has no usable {wanted} entry (file_types {file_types}; "
            f"{counts}); {{n}} skipped",
        )
        hint = "".join(
            f"; file_types {_FILE_TYPE_OF[kind]} or both makes tasks of the {_KIND_NAMES[kind]}s"
            for kind, count in self.entries.items()
            if count and kind not in self.wanted
        )
        raise SourceError(
            f"index {self.shown} lists no {wanted}s (reporting structures: {self.structures:,}; "
            f"{counts}; file_types {file_types}){hint}"
        )

    def _skip(self, where: str, reason: str) -> None:
        self.skipped.append(SkippedEntry(where, reason))

    def _structure(self, item: Any) -> None:
        at = f"reporting_structure[{self.structures}]"
        self.structures += 1
        if not isinstance(item, dict):
            self._skip(at, f"expected a reporting structure object, found {_json_kind(item)}")
            return
        plans = item.get("reporting_plans")
        if plans is None:
            plans = []
        elif not isinstance(plans, list):
            kind = _json_kind(plans)
            self._skip(
                f"{at}.reporting_plans",
                f"expected an array of plan objects, found {kind}; the structure's files are "
                "skipped",
            )
            return
        kept = []
        for n, plan in enumerate(plans):
            if isinstance(plan, dict):
                kept.append(_plain(plan))
            else:
                self._skip(
                    f"{at}.reporting_plans[{n}]",
                    f"expected a plan object, found {_json_kind(plan)}",
                )
        shared = keyed(kept)
        for key, kind in _FILE_KEYS.items():
            self._files(f"{at}.{key}", item.get(key), kind, shared)

    def _files(
        self, at: str, value: Any, kind: str, shared: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """The file entries of one key of a structure: an array of objects, or one object."""
        if value is None:
            return
        if isinstance(value, dict):  # the schema's allowed_amount_file: one object
            entries = [(at, value)]
        elif isinstance(value, list):  # the schema's in_network_files (and some payers')
            entries = [(f"{at}[{n}]", entry) for n, entry in enumerate(value)]
        else:
            self.entries[kind] += 1
            if kind in self.wanted:
                self._skip(at, f"expected an array of file objects, found {_json_kind(value)}")
            return
        self.entries[kind] += len(entries)
        if kind not in self.wanted:
            return
        for where, entry in entries:
            location = entry.get("location") if isinstance(entry, dict) else None
            if not isinstance(entry, dict):
                self._skip(where, f"expected a file object, found {_json_kind(entry)}")
                continue
            if "location" not in entry:
                self._skip(where, "location is missing")
                continue
            if not isinstance(location, str):
                self._skip(where, f"location is {_json_kind(location)}, expected a URL string")
                continue
            if (resolved := self.known.get(location)) is None:
                written = location
                location = resolve_reference(location.strip(), self.source)
                resolved = resolve_location(location, self.local)  # in collector: checked
                if resolved not in self.collector and (
                    invalid := location_problem(location, self.local)
                ):
                    self._skip(where, f"location {shorten(redact_url(location))} {invalid}")
                    continue
                self.known[written] = resolved
            self.collector.add(resolved, shared, _description(entry), kind)


class _Found(list[Any]):
    """The end of an ijson coroutine chain: what is sent to it is kept."""

    send = list.append


def _description(entry: dict[str, Any]) -> str | None:
    """A file entry's description, when it is a string."""
    description = entry.get("description")
    return description if isinstance(description, str) else None


def _plain(value: Any) -> Any:
    """`value` with Decimals (ijson's non-integer numbers) as floats, so it is JSON again."""
    match value:
        case Decimal():
            number = float(value)
            return number if math.isfinite(number) else str(value)
        case dict():
            return {k: _plain(v) for k, v in value.items()}
        case list():
            return [_plain(v) for v in value]
        case _:
            return value


def _without_snippet(message: str) -> str:
    """A JSON error without the bytes near the error, which may hold a signed location URL.

    engines.yajl.json_error writes them as ` near '...'`, before an optional
    ` (between decoded bytes ...)`.
    """
    return re.sub(r" near (['\"]).*?\1(?= \(between|$)", "", message, flags=re.DOTALL)


def _json_kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "true or false"
        case str():
            return "a string"
        case int() | float() | Decimal():
            return "a number"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return type(value).__name__


def _event_kind(event: str) -> str:
    return {
        "start_map": "an object",
        "start_array": "an array",
        "null": "null",
        "boolean": "true or false",
        "number": "a number",
        "string": "a string",
    }.get(event, event)
