"""Sources of extraction tasks: a plans CSV, a CMS table of contents, a URL list, one URL.

Every source becomes a list of :class:`Task`, one per in-network file, sorted by network id.
URLs that differ only in their query string (signed URLs) are the same file: one task, with
the first URL seen and the plans of every input that named the file. The tasks TSV written by
:func:`write_tasks` is what the workflow's jobs read back with :func:`read_tasks`. The table
of contents is parsed by :mod:`mrfbatch.toc`, with the helpers shared here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mrfbatch.errors import SourceError, UsageError
from mrfbatch.network_ids import assign_network_ids, check_network_id, redact_url
from mrfbatch.transport import TransportSettings, http_url_problem

SOURCE_TYPES = ("csv", "index", "urls", "url")
TASKS_HEADER = ("network_id", "url", "output_prefix", "plan_metadata", "extra_args")
URL_COLUMN = "file_url"

_MAX_LISTED = 20  # problems named in one message; the rest are counted
_SHOWN_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)
_OTHER_DELIMITERS = {"\t": "tab", ";": "semicolon", "|": "pipe"}

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Task:
    """One in-network file to extract, with the plans that list it.

    Tasks compare by value. They hold dicts, so they are not hashable: key them by
    `network_id`.
    """

    network_id: str
    url: str  # as given, query string kept: the job needs the signature
    plan_metadata: tuple[dict[str, Any], ...] = ()  # deduplicated, in first-seen order
    extra_args: dict[str, Any] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]


def load_tasks(source: str, input: str, settings: TransportSettings | None = None) -> list[Task]:
    """The tasks of `input` read as a `source` (one of SOURCE_TYPES), sorted by network id.

    >>> [task.network_id for task in load_tasks("url", "https://cdn.example/2024-01_ppo.json.gz?s=x")]
    ['2024-01_ppo']
    """
    if source == "csv":
        return parse_csv(input)
    if source == "index":
        from mrfbatch.toc import parse_index  # not at the top: mrfbatch.toc imports this module

        return parse_index(input, settings)
    if source == "urls":
        return parse_urls(input)
    if source == "url":
        return parse_url(input)
    raise UsageError(f"unknown source type {source!r}; expected one of {', '.join(SOURCE_TYPES)}")


# ---------------------------------------------------------------------------------------------
# csv
# ---------------------------------------------------------------------------------------------


def parse_csv(path: PathLike) -> list[Task]:
    """One task per distinct `file_url` of a plans CSV; the other columns are plan metadata.

    The header must have a `file_url` column (names are stripped of whitespace; byte order
    marks and CRLF line ends are fine). Quoting is strict: a quote never closed is an error
    naming the line it opens on, not the rest of the file in one cell. Blank rows are skipped;
    every other non-empty cell of a row becomes a string field of that row's plan. Rows naming
    the same file share one task. A relative path in `file_url` is relative to the folder of
    `path` (see :func:`resolve_location`).
    """
    name = str(path)
    text = _read_text(path, "source file")
    # strict: a quote opened and never closed is an error, not the rest of the file in a cell
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    collector = _Collector()
    problems: list[str] = []
    header: list[str] | None = None
    url_at = 0
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                url_at = _url_column(header, name, start)
                continue
            url, plan, problem = _csv_row(row, header, url_at, start, name)
            if problem:
                problems.append(problem)
            else:
                collector.add(url, _keyed([plan] if plan else []))
    except csv.Error as exc:
        hint = ""
        if str(exc) == "unexpected end of data":
            hint = f" (a quote opened in the row that starts on line {line} is never closed)"
        raise SourceError(f"{name} is not a readable CSV at line {line}: {exc}{hint}") from exc
    if header is None:
        raise SourceError(f"{name} is empty; expected a CSV header with a {URL_COLUMN} column")
    _raise_problems(problems, f"{name} has {{n}} unusable rows")
    if not collector:
        raise SourceError(f"{name} has a header but no rows; expected one row per file and plan")
    return collector.tasks()


def _url_column(header: list[str], name: str, line: int) -> int:
    if URL_COLUMN not in header:
        found = ", ".join(repr(h) for h in header[:_MAX_LISTED])
        more = f" and {len(header) - _MAX_LISTED} more" if len(header) > _MAX_LISTED else ""
        hint = ""
        for mark, name_of_mark in _OTHER_DELIMITERS.items():
            if len(header) == 1 and mark in header[0]:
                hint = (
                    f" (the header holds {name_of_mark}s: the file looks {name_of_mark}-"
                    "separated, expected commas)"
                )
                break
        raise SourceError(
            f"{name} has no {URL_COLUMN!r} column in its header (line {line}); "
            f"found columns: {found}{more}{hint}"
        )
    for column in header:
        if column and header.count(column) > 1:
            raise SourceError(
                f"{name}: column {column!r} appears twice in the header (line {line})"
            )
    return header.index(URL_COLUMN)


def _csv_row(
    row: list[str], header: list[str], url_at: int, line: int, source: str
) -> tuple[str, dict[str, Any], str | None]:
    """(url, plan, problem) of one data row of the CSV `source`."""
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        return "", {}, f"line {line} has {len(row)} fields, the header {len(header)}"
    url = row[url_at].strip() if url_at < len(row) else ""
    if not url:
        return "", {}, f"line {line} has an empty {URL_COLUMN}"
    invalid = _location_problem(url, source)
    if invalid:
        return "", {}, f"line {line}: {_shorten(redact_url(url))} {invalid}"
    plan: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=False):
        value = cell.strip()
        if column == URL_COLUMN or not value:
            continue
        if not column:
            return "", {}, f"line {line} has a value ({_shorten(value)}) in a column with no name"
        plan[column] = value
    return resolve_location(url, source), plan, None


# ---------------------------------------------------------------------------------------------
# urls, url
# ---------------------------------------------------------------------------------------------


def parse_urls(path: PathLike) -> list[Task]:
    """One task per distinct URL of a text file holding one URL (or file path) per line.

    Blank lines and `#` comments (whole lines, or after whitespace at the end of a line) are
    skipped. A relative path is relative to the folder of `path` (see
    :func:`resolve_location`). Every line that is neither an http(s)/file URL nor an existing
    file is reported, all in one error.
    """
    name = str(path)
    text = _read_text(path, "source file")
    collector = _Collector()
    problems: list[str] = []
    for number, raw in enumerate(io.StringIO(text, newline=None), 1):
        url = _COMMENT.sub("", raw.strip()).strip()
        if not url:
            continue
        invalid = _location_problem(url, name)
        if invalid:
            problems.append(f"line {number}: {_shorten(redact_url(url))} {invalid}")
        else:
            collector.add(resolve_location(url, name), [])
    _raise_problems(
        problems,
        f"{name} has {{n}} lines that are neither an http(s)/file URL nor an existing file",
    )
    if not collector:
        raise SourceError(f"{name} lists no URLs (only blank lines and comments)")
    return collector.tasks()


def parse_url(url: str) -> list[Task]:
    """The task of a single http(s)/file URL or existing file path (relative to the working
    directory)."""
    text = url.strip()
    if not text:
        raise SourceError("the URL is empty; expected an http(s)/file URL or an existing file")
    invalid = _location_problem(text)
    if invalid:
        raise SourceError(f"{_shorten(redact_url(text))} {invalid}")
    collector = _Collector()
    collector.add(text, [])
    return collector.tasks()


# ---------------------------------------------------------------------------------------------
# The tasks TSV
# ---------------------------------------------------------------------------------------------


def write_tasks(tasks: Iterable[Task], path: PathLike, output_dir: PathLike) -> None:
    """Write the tasks TSV atomically (a temporary file beside `path`, then a rename).

    Columns: network_id, url, output_prefix (`{output_dir}/{network_id}`), plan_metadata (a
    JSON array) and extra_args (a JSON object). JSON escapes tabs and newlines, so no field
    holds one.
    """
    prefix = str(output_dir).rstrip("/")  # "/" becomes "", so prefixes are "/{network_id}"
    if not str(output_dir):
        raise UsageError("output_dir is empty; expected a folder for the outputs")
    if _CONTROL.search(prefix):
        raise UsageError(f"output_dir {prefix!r} contains a tab, newline or control character")
    lines = ["\t".join(TASKS_HEADER) + "\n"]
    seen: dict[str, str] = {}
    for task in tasks:
        _check_task(task, seen)
        try:
            plans = _compact(list(task.plan_metadata))
            extra = _compact(task.extra_args)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"task {task.network_id}: metadata is not JSON: {exc}") from exc
        fields = (task.network_id, task.url, f"{prefix}/{task.network_id}", plans, extra)
        lines.append("\t".join(fields) + "\n")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_tasks(path: PathLike) -> list[Task]:
    """The tasks of a tasks TSV written by :func:`write_tasks` (output_prefix is not kept)."""
    name = str(path)
    text = _read_text(path, "tasks file", bom=False)
    lines = text.split("\n")
    if lines[0].rstrip("\r") != "\t".join(TASKS_HEADER):
        raise SourceError(
            f"{name} is not a tasks file: line 1 is {_shorten(lines[0])}, expected the header "
            f"{chr(9).join(TASKS_HEADER)!r}"
        )
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(TASKS_HEADER):
            raise SourceError(
                f"{name} line {number} has {len(fields)} tab-separated fields, "
                f"expected {len(TASKS_HEADER)}"
            )
        network_id, url, _, plans_text, extra_text = fields
        try:
            plans = json.loads(plans_text)
            extra = json.loads(extra_text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{name} line {number}: invalid JSON: {exc}") from exc
        except RecursionError:
            raise SourceError(f"{name} line {number}: JSON nested too deeply") from None
        if not isinstance(plans, list) or not all(isinstance(p, dict) for p in plans):
            raise SourceError(f"{name} line {number}: plan_metadata is not a JSON array of objects")
        if not isinstance(extra, dict):
            raise SourceError(f"{name} line {number}: extra_args is not a JSON object")
        task = Task(network_id, url, tuple(plans), extra)
        try:
            _check_task(task, seen)
        except UsageError as exc:
            raise SourceError(f"{name} line {number}: {exc}") from None
        tasks.append(task)
    return tasks


def _check_task(task: Task, seen: dict[str, str]) -> None:
    """UsageError unless `task` can be written as a TSV row and its id is a fresh folder name."""
    network_id = task.network_id
    check_network_id(network_id)
    folded = network_id.lower()
    if folded in seen:
        raise UsageError(
            f"network ids {seen[folded]!r} and {network_id!r} name the same folder "
            "(ids are compared ignoring case)"
        )
    seen[folded] = network_id
    if not task.url or _CONTROL.search(task.url):
        raise UsageError(
            f"task {network_id}: URL is empty or holds a tab, newline or control character"
        )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


class _Collector:
    """Files in first-seen order, each with its distinct plans in first-seen order."""

    def __init__(self) -> None:
        self._plans: dict[str, dict[str, dict[str, Any]]] = {}  # url -> plan key -> plan

    def __bool__(self) -> bool:
        return bool(self._plans)

    def __contains__(self, url: str) -> bool:
        return url in self._plans

    def add(self, url: str, plans: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Note `url` with its (key, plan) pairs, as made by _keyed."""
        kept = self._plans.setdefault(url, {})
        for key, plan in plans:
            kept.setdefault(key, plan)

    def tasks(self, extra_args: dict[str, Any] | None = None) -> list[Task]:
        """Tasks sorted by network id; URLs that share an id (query variants) are merged."""
        ids = assign_network_ids(self._plans)
        merged: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}
        for url, plans in self._plans.items():
            _, kept = merged.setdefault(ids[url], (url, {}))
            for key, plan in plans.items():
                kept.setdefault(key, plan)
        return [
            Task(network_id, url, tuple(plans.values()), dict(extra_args or {}))
            for network_id, (url, plans) in sorted(merged.items())
        ]


_plan_key = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _keyed(plans: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each plan with the text that identifies it whatever its key order."""
    return [(_plan_key(plan), plan) for plan in plans]


def resolve_location(location: str, source: PathLike | None) -> str:
    """`location` as listed in the local file `source`: a relative path is joined to the folder
    of `source`; URLs, absolute paths and the locations of a source in the working directory
    are kept as written, as is every location when `source` is None.

    >>> resolve_location("files/a.json", "data/plans.csv")
    'data/files/a.json'
    >>> resolve_location("files/a.json", "plans.csv")
    'files/a.json'
    """
    if source is None or not is_relative_path(location):
        return location
    folder = Path(source).parent
    return location if folder == Path(".") else os.path.join(folder, location)


def is_relative_path(location: str) -> bool:
    """Whether `location` is a relative file path: no URL scheme, not absolute."""
    try:
        scheme = urlsplit(location).scheme
    except ValueError:  # a malformed URL, refused by _location_problem
        return False
    # a one-letter scheme is a Windows drive letter: a path
    return len(scheme) <= 1 and not os.path.isabs(location)


def _location_problem(text: str, source: PathLike | None = None) -> str | None:
    """Why `text` is not an http(s)/file URL or an existing file, or None when it is one.

    A relative path is looked for as :func:`resolve_location` makes it.
    """
    if _CONTROL.search(text):
        return "contains a tab, newline or control character"
    try:
        parts = urlsplit(text)
    except ValueError:
        return "is not a valid URL: its host part is malformed"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return http_url_problem(text)
    if scheme == "file":
        return None if parts.path else "has no path"
    if scheme and len(scheme) > 1:
        return f"has the unsupported scheme {scheme!r} (expected http, https, file or a path)"
    path = resolve_location(text, source)
    looked = ""
    if path != text:  # its written part redacted and cut as `text` is where it is shown
        shown = resolve_location(_cut(redact_url(text)), source)
        looked = f" (looked for {shown}, relative to the folder of {source})"
    try:
        if Path(path).is_file():
            return None
        if Path(path).is_dir():
            return f"is a directory, not a file{looked}"
    except (OSError, ValueError):
        pass
    return f"is neither an http(s)/file URL nor an existing file{looked}"


def _read_text(path: PathLike, what: str, bom: bool = True) -> str:
    """The UTF-8 text of a small local file, or SourceError saying what is wrong and where.

    Compressed files, UTF-16, NUL bytes (binary files) and anything but a regular file are
    refused; with `bom`, byte order marks are dropped wherever they are.
    """
    name = str(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SourceError(f"{what} {name} is a directory, expected a file")
        if not stat.S_ISREG(mode):  # reading a pipe or a device could block or never end
            raise SourceError(f"{what} {name} is not a regular file (a pipe or a device?)")
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{what} {name} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read {what} {name}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL in the name
        raise SourceError(f"{what} {name!r} is not a usable file name: {exc}") from None
    if data.startswith((b"\x1f\x8b", b"PK\x03\x04")):
        kind = "gzip" if data.startswith(b"\x1f\x8b") else "zip"
        raise SourceError(f"{what} {name} is {kind}-compressed; expected plain UTF-8 text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(f"{what} {name} starts with a UTF-16 byte order mark; save it as UTF-8")
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not 0 <= nul < exc.start:
            line = data.count(b"\n", 0, exc.start) + 1
            raise SourceError(
                f"{what} {name} is not UTF-8 text: byte {exc.start} (line {line}) is "
                f"{data[exc.start : exc.start + 1]!r}; save it as UTF-8"
            ) from exc
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise SourceError(
            f"{what} {name} holds a NUL byte at byte {nul} (line {line}); expected text "
            "(is it a binary file, or UTF-16?)"
        )
    # A byte order mark at the start, or inside where files were joined (`cat a.csv b.csv`)
    return text.replace("\ufeff", "") if bom else text


def _raise_problems(problems: list[str], summary: str) -> None:
    """One SourceError listing every problem (the first _MAX_LISTED of them)."""
    if not problems:
        return
    listed = "; ".join(problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise SourceError(f"{summary.format(n=len(problems))}: {listed}{more}")


def _shorten(text: str) -> str:
    return repr(_cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
