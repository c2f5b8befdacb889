"""The task model: one file to extract, with the plans that list it.

Every source (mrfbatch.sources) collects its files with a :class:`TaskCollector`; the tasks
TSV written by :func:`write_tasks` is what the workflow's jobs read back with
:func:`read_tasks`. A task's `extra_args` says where its file was listed (the index source: the
index's header, the file's descriptions and the kind of file the index says it is); it is not
part of what makes a task's tables, so an edit of it redoes nothing.

A source may skip entries it cannot use (the index source: a file entry without a location);
:class:`SourceTasks` holds its tasks and what it skipped, which :func:`write_skipped` keeps
beside the tasks TSV for the run's manifest.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrfbatch.errors import SourceError, UsageError
from mrfbatch.jsonfile import read_json_object, write_json
from mrfbatch.network_ids import assign_network_ids, check_network_id
from mrfbatch.textfile import PathLike, open_regular, shorten
from mrfbatch.urls import CONTROL

TASKS_HEADER = ("network_id", "url", "output_prefix", "plan_metadata", "extra_args")
MAX_SKIPPED_KEPT = 1000  # skipped entries written beside the tasks; the rest are counted


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


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of a source that gave no task: where it is and why it was skipped.

    `where` names its position as the source's own path, e.g.
    `reporting_structure[3].in_network_files[7]`.
    """

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class SourceTasks:
    """What a source gave: its tasks (sorted by network id) and the entries it skipped."""

    tasks: list[Task]
    skipped: list[SkippedEntry] = field(default_factory=list)


class TaskCollector:
    """Files in first-seen order, each with its distinct plans and descriptions in first-seen
    order."""

    def __init__(self) -> None:
        self._plans: dict[str, dict[str, dict[str, Any]]] = {}  # url -> plan key -> plan
        # url -> description -> when it was first seen (over all URLs), so descriptions of
        # URLs merged into one task keep the order they were met in
        self._descriptions: dict[str, dict[str, int]] = {}
        self._kinds: dict[str, str] = {}  # url -> the file's kind, as its source says
        self._seen = 0

    def __bool__(self) -> bool:
        return bool(self._plans)

    def __contains__(self, url: str) -> bool:
        return url in self._plans

    def add(
        self,
        url: str,
        plans: Iterable[tuple[str, dict[str, Any]]] = (),
        description: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Note `url` with its plans as made by :func:`keyed` (a plan already noted is kept
        once, whatever its key order), what the source calls the file, if anything (kept
        once, trimmed; empty text is ignored) and the kind of file the source says it is (the
        first kind given is kept)."""
        kept = self._plans.setdefault(url, {})
        if kind is not None:
            self._kinds.setdefault(url, kind)
        for key, plan in plans:
            kept.setdefault(key, plan)
        text = (description or "").strip()
        if text:
            self._seen += 1
            self._descriptions.setdefault(url, {}).setdefault(text, self._seen)

    def tasks(self, extra_args: dict[str, Any] | None = None) -> list[Task]:
        """Tasks sorted by network id; URLs that share an id (query variants) are merged.

        Each task's `extra_args` is `extra_args` (the same for all) plus, when its URLs were
        noted with descriptions, `file_description`: the distinct ones in first-seen order,
        joined by " | ", and when they were noted with a kind, `file_kind` (its first URL's).
        """
        ids = assign_network_ids(self._plans)
        merged: dict[str, tuple[str, dict[str, dict[str, Any]], dict[str, int]]] = {}
        for url, plans in self._plans.items():
            _, kept, described = merged.setdefault(ids[url], (url, {}, {}))
            for key, plan in plans.items():
                kept.setdefault(key, plan)
            for text, seen in self._descriptions.get(url, {}).items():
                described[text] = min(seen, described.get(text, seen))
        tasks = []
        for network_id, (url, plans, described) in sorted(merged.items()):
            extra = dict(extra_args or {})
            if described:
                extra["file_description"] = " | ".join(sorted(described, key=described.__getitem__))
            if url in self._kinds:
                extra["file_kind"] = self._kinds[url]
            tasks.append(Task(network_id, url, tuple(plans.values()), extra))
        return tasks


def write_tasks(tasks: Iterable[Task], path: PathLike, output_dir: PathLike) -> None:
    """Write the tasks TSV atomically (a temporary file beside `path`, then a rename).

    Columns: network_id, url, output_prefix (`{output_dir}/{network_id}`), plan_metadata (a
    JSON array) and extra_args (a JSON object). JSON escapes tabs and newlines, so no field
    holds one.
    """
    prefix = str(output_dir).rstrip("/")  # "/" becomes "", so prefixes are "/{network_id}"
    if not str(output_dir):
        raise UsageError("output_dir is empty; expected a folder for the outputs")
    if CONTROL.search(prefix):
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


def read_tasks(path: PathLike, plans: bool = True) -> list[Task]:
    """The tasks of a tasks TSV written by :func:`write_tasks` (output_prefix is not kept).

    `plans` False leaves every task's plan_metadata empty, not decoded (only checked to be
    a JSON array as text): what the run's main process needs is ids and URLs, and an index
    may give each file thousands of plans (1.5 million on 300 lines took 2.2 s to decode).
    """
    name = str(path)
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    # An index lists a file for every plan that uses it, and a plan uses many files: one dict
    # per distinct plan, not one per line it is on (1.5 million plans on 300 lines took 850 MB)
    pool: dict[Any, dict[str, Any]] = {}
    header = None
    with open_regular(path, "tasks file") as f:
        try:  # a line at a time: the file may be GBs, most of it plans
            for number, raw in enumerate(f, 1):
                try:
                    line = _decoded(raw.rstrip(b"\n"))
                    if header is None:
                        header = line
                        _check_header(name, line)
                    elif line:
                        task = _line_task(line, seen, plans)
                        shared = tuple(_shared(plan, pool) for plan in task.plan_metadata)
                        tasks.append(Task(task.network_id, task.url, shared, task.extra_args))
                except _BadLine as exc:
                    raise SourceError(f"{name} line {number}{exc}") from exc.__cause__
        except OSError as exc:
            raise SourceError(f"cannot read tasks file {name}: {exc.strerror or exc}") from exc
    if header is None:
        _check_header(name, "")
    return tasks


def _shared(plan: dict[str, Any], plans: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The dict in `plans` equal to `plan`, with its keys in the same order and its values of
    the same types (1, 1.0 and true are equal in Python, not in JSON); `plan` when it is the
    first (or holds a list or an object: such plans are not shared)."""
    try:
        return plans.setdefault((tuple(plan.items()), tuple(map(type, plan.values()))), plan)
    except TypeError:
        return plan


def read_task(path: PathLike, network_id: str) -> Task | None:
    """The task of `network_id` in a tasks TSV, or None; only its line is read as text.

    An extraction job needs one task: parsing every line, as :func:`read_tasks` does, made each
    job of a 20,000-task run spend about 0.2 s on it, and decoding the whole file, 0.3 s and
    300 MB when an index gave each file thousands of plans. The file is searched as bytes in
    place (mapped); the whole of it is checked by :func:`read_tasks` where the run starts.
    """
    name = str(path)
    with open_regular(path, "tasks file") as f:
        try:
            _check_header(name, f.readline(1024).decode("utf-8", "replace").rstrip("\n"))
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # not empty: it has a header
        except OSError as exc:
            raise SourceError(f"cannot read tasks file {name}: {exc.strerror or exc}") from exc
    with data:
        at = data.find(f"\n{network_id}\t".encode())
        if at < 0:
            return None
        end = data.find(b"\n", at + 1)
        raw = data[at + 1 : end if end >= 0 else len(data)]
        try:
            return _line_task(_decoded(raw), {})
        except _BadLine as exc:
            number = _newlines(data, at) + 2  # counted only for the message
            raise SourceError(f"{name} line {number}{exc}") from exc.__cause__


class _BadLine(Exception):
    """What is wrong with one line of a tasks TSV, to follow `{file} line {number}`."""


def _check_header(name: str, first: str) -> None:
    if first.rstrip("\r") != "\t".join(TASKS_HEADER):
        raise SourceError(
            f"{name} is not a tasks file: line 1 is {shorten(first)}, expected the header "
            f"{chr(9).join(TASKS_HEADER)!r}"
        )


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise _BadLine(f": byte {exc.start} of the line is not UTF-8") from None


def _newlines(data: mmap.mmap, end: int, step: int = 1 << 24) -> int:
    """How many newlines `data` holds before `end`, counted a piece at a time."""
    return sum(data[at : min(at + step, end)].count(b"\n") for at in range(0, end, step))


def _line_task(line: str, seen: dict[str, str], with_plans: bool = True) -> Task:
    """The task on one line of a tasks TSV, checked (`seen`: see _check_task); its plans only
    when `with_plans` (see read_tasks)."""
    fields = line.split("\t")
    if len(fields) != len(TASKS_HEADER):
        raise _BadLine(f" has {len(fields)} tab-separated fields, expected {len(TASKS_HEADER)}")
    network_id, url, _, plans_text, extra_text = fields
    if not with_plans and plans_text[:1] + plans_text[-1:] == "[]":
        plans_text = "[]"  # an array, as text: its plans are not decoded
    try:
        plans = json.loads(plans_text)
        extra = json.loads(extra_text)
    except json.JSONDecodeError as exc:
        raise _BadLine(f": invalid JSON: {exc}") from exc
    except RecursionError:
        raise _BadLine(": JSON nested too deeply") from None
    if not isinstance(plans, list) or not all(isinstance(p, dict) for p in plans):
        raise _BadLine(": plan_metadata is not a JSON array of objects")
    if not isinstance(extra, dict):
        raise _BadLine(": extra_args is not a JSON object")
    task = Task(network_id, url, tuple(plans), extra)
    try:
        _check_task(task, seen)
    except UsageError as exc:
        raise _BadLine(f": {exc}") from None
    return task


def write_skipped(skipped: Sequence[SkippedEntry], path: PathLike) -> None:
    """Write what a source skipped as JSON, atomically: `skipped_entries` (the first
    MAX_SKIPPED_KEPT, each `{"where": ..., "reason": ...}`) and `skipped_entries_total`."""
    write_json(
        path,
        {
            "skipped_entries": [
                {"where": entry.where, "reason": entry.reason}
                for entry in skipped[:MAX_SKIPPED_KEPT]
            ],
            "skipped_entries_total": len(skipped),
        },
    )


def read_skipped(path: PathLike) -> tuple[list[SkippedEntry], int]:
    """The skipped entries :func:`write_skipped` wrote, and how many there were in all; none
    when the file is missing or unreadable (a run of an earlier version wrote none)."""
    data = read_json_object(path) or {}
    listed = data.get("skipped_entries")
    entries = [
        SkippedEntry(str(item.get("where", "")), str(item.get("reason", "")))
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    ]
    total = data.get("skipped_entries_total")
    return entries, max(total, len(entries)) if isinstance(total, int) else len(entries)


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
    if not task.url or CONTROL.search(task.url):
        raise UsageError(
            f"task {network_id}: URL is empty or holds a tab, newline or control character"
        )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


_plan_key = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def keyed(plans: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each plan with the text that identifies it whatever its key order (made once, for a
    list of plans shared by many files)."""
    return [(_plan_key(plan), plan) for plan in plans]
