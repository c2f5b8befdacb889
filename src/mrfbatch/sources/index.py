"""The CMS table of contents (the "index" source): one task per in-network file it lists.

The file is streamed, one reporting structure at a time, through ijson's C coroutines. Files
that are not a table of contents (an in-network, allowed-amounts or provider-reference file, a
top-level array) are refused as soon as their top level shows it; nesting and key length are
bounded before any structure is assembled. Tasks are collected as for the other
sources (mrfbatch.tasks, mrfbatch.sources.locations).

Each task's `extra_args` holds what the index says of its file: the index's header
(`index_reporting_entity_name`, `index_reporting_entity_type`, `index_last_updated_on`,
`index_version`, each only when given; the header may come after `reporting_structure`, so the
tasks are made after the scan) and `file_description`, the distinct `description`s of the
`in_network_files` entries that list the file, joined by " | ".
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Generator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import ijson

from mrfbatch.compression import DecodedStream
from mrfbatch.engines.yajl import json_error, load_backend
from mrfbatch.errors import (
    CompressionError,
    JsonFormatError,
    RestartFromZero,
    SourceError,
    TransportError,
)
from mrfbatch.redact import redact_url
from mrfbatch.sources.locations import (
    MAX_LISTED,
    location_problem,
    raise_problems,
    resolve_location,
)
from mrfbatch.tasks import Task, TaskCollector, keyed
from mrfbatch.textfile import PathLike, shorten
from mrfbatch.transport import TransportSettings, open_source

log = logging.getLogger(__name__)

_BUF_SIZE = 1 << 16
_MAX_DEPTH = 64  # nesting of a table of contents; its own structure needs 5
_MAX_KEY = 1000  # characters of one key of a table of contents
_IN_NETWORK_HINT = "; give an in-network file as source 'url' or 'urls'"
# The index's top-level keys kept in every task's extra_args: key -> (its name there, whether
# a number is kept too, as its text: some indexes write `"version": 1.0`). A string is kept;
# null, true/false, objects and arrays are not.
_HEADER = {
    "reporting_entity_name": ("index_reporting_entity_name", False),
    "reporting_entity_type": ("index_reporting_entity_type", False),
    "last_updated_on": ("index_last_updated_on", True),
    "version": ("index_version", True),
}
_NOT_A_TOC = {  # top-level key: (what the file looks like, what to do)
    "in_network": ("an in-network rates file", _IN_NETWORK_HINT),
    "provider_references": ("an in-network rates file", _IN_NETWORK_HINT),
    "out_of_network": ("an allowed-amounts file", "; allowed amounts are not extracted"),
    "provider_groups": ("a provider-reference file", ""),
}


def parse_index(path_or_url: PathLike, settings: TransportSettings | None = None) -> list[Task]:
    """One task per distinct `in_network_files[].location` of a CMS table-of-contents file.

    `path_or_url` is a local path or an http(s)/file URL; gzip, zip or plain JSON, detected
    from the first bytes. A relative path in the `location` of a local index is relative to
    the index's folder; in an index fetched by http(s), it is kept as written (relative to the
    working directory). The file is streamed, one reporting structure at a time. A task
    carries the `reporting_plans` of every structure that lists its file, and in `extra_args`
    the index's header and the file's descriptions (see the module's docstring).
    Allowed-amount files are counted, not returned.
    """
    source = str(path_or_url)
    local = _require_local_file(source)
    shown = redact_url(source)
    restarts = (settings or TransportSettings()).restarts
    for attempt in range(restarts + 1):
        try:
            with open_source(source, settings) as raw:
                stream = DecodedStream(raw)
                index = _Index(shown, local)
                index.scan(stream)
            break
        except RestartFromZero as exc:  # the file changed while it was read: read it again
            if attempt == restarts:
                raise SourceError(
                    f"cannot read the index: gave up after {restarts} restarts: {exc}"
                ) from exc
            log.warning("index %s: reading it again from the start: %s", shown, exc)
        except (TransportError, CompressionError, JsonFormatError) as exc:
            raise SourceError(f"cannot read the index: {exc}") from exc
    raise_problems(index.problems, f"index {shown} has {{n}} unusable entries")
    log.info(
        "index %s: %d reporting structures, %d in-network file entries, "
        "%d allowed-amount files (not extracted)",
        shown,
        index.structures,
        index.in_network_entries,
        index.allowed_amount_files,
    )
    if not index.collector:
        raise SourceError(
            f"index {shown} lists no in-network files (reporting structures: "
            f"{index.structures}; allowed-amount files, which are not extracted: "
            f"{index.allowed_amount_files})"
        )
    return index.collector.tasks(index.header)


class _Index:
    """One streaming pass over a table of contents."""

    def __init__(self, shown: str, local: Path | None):
        self.shown = shown
        self.local = local  # the index file (None over http): relative locations are in its folder
        self.collector = TaskCollector()
        self.problems: list[str] = []
        self.header: dict[str, str] = {}  # extra_args name -> the index's value, as text
        self.structures = 0
        self.in_network_entries = 0
        self.allowed_amount_files = 0
        self.seen_structures = False
        self.keys: list[str] = []  # the first top-level keys, to say what a non-TOC holds

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

    def _structure(self, item: Any) -> None:
        at = f"reporting_structure[{self.structures}]"
        self.structures += 1
        if not isinstance(item, dict):
            self.problems.append(f"{at} is {_json_kind(item)}, expected an object")
            return
        plans = item.get("reporting_plans") or []
        if not isinstance(plans, list) or not all(isinstance(p, dict) for p in plans):
            self.problems.append(
                f"{at}.reporting_plans is not an array of objects ({_json_kind(plans)})"
            )
            return
        allowed = item.get("allowed_amount_file")
        if isinstance(allowed, list):
            self.allowed_amount_files += len(allowed)
        elif allowed is not None:
            self.allowed_amount_files += 1
        files = item.get("in_network_files") or []
        if not isinstance(files, list):
            self.problems.append(f"{at}.in_network_files is {_json_kind(files)}, expected an array")
            return
        shared = keyed([_plain(plan) for plan in plans])
        for n, entry in enumerate(files):
            self.in_network_entries += 1
            location = entry.get("location") if isinstance(entry, dict) else None
            where = f"{at}.in_network_files[{n}]"
            if not isinstance(entry, dict):
                self.problems.append(f"{where} is {_json_kind(entry)}, expected an object")
            elif not isinstance(location, str):
                shown = "missing" if "location" not in entry else _json_kind(location)
                self.problems.append(f"{where}.location is {shown}, expected a URL string")
            elif (resolved := resolve_location(location.strip(), self.local)) in self.collector:
                self.collector.add(resolved, shared, _description(entry))  # checked once
            elif invalid := location_problem(location.strip(), self.local):
                self.problems.append(
                    f"{where}.location {shorten(redact_url(location.strip()))} {invalid}"
                )
            else:
                self.collector.add(resolved, shared, _description(entry))


class _Found(list[Any]):
    """The end of an ijson coroutine chain: what is sent to it is kept."""

    send = list.append


def _description(entry: dict[str, Any]) -> str | None:
    """An in_network_files entry's description, when it is a string."""
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


def _require_local_file(source: str) -> Path | None:
    """The file of a local source (path or file URL), SourceError unless it exists; None for
    an http(s) source."""
    parts = urlsplit(source)
    if parts.scheme.lower() == "file":
        path = Path(url2pathname(parts.path))
    elif not parts.scheme or len(parts.scheme) == 1:
        path = Path(source)
    else:
        return None
    if path.is_dir():
        raise SourceError(f"source {path} is a directory, expected a file")
    if not path.is_file():
        raise SourceError(f"source file {path} does not exist")
    return path


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
