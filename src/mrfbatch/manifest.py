"""The run manifest: one entry per task, saying what succeeded, what failed and why."""

from __future__ import annotations

import json
import mmap
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mrfbatch.jsonfile import read_json_object, write_json
from mrfbatch.layout import IN_NETWORK, RunLayout
from mrfbatch.redact import redact_url
from mrfbatch.tasks import SkippedEntry, Task

STATUSES = ("success", "incomplete", "failed", "not_run")

COUNTS = (  # status.json's counts, copied into each entry
    "bytes_read",
    "bytes_decoded",
    "retries",
    "resumes",
    "restarts",
    "items_seen",
    "items_matched",
    "rate_rows",
    "provider_rows",
    "allowed_amount_rows",
    "allowed_amount_provider_rows",
    "unresolved_references",
    "remote_references_failed",
)


def build_manifest(
    tasks: Iterable[Task],
    layout: RunLayout,
    source_type: str,
    source_input: str,
    skipped: tuple[Sequence[SkippedEntry], int] = ((), 0),
    whitelist: Collection[str] | None = None,
    unrecorded: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Collect every task's status into the manifest (see docs/output.md).

    A task whose status cannot be found (never run, or interrupted) is `not_run`, unless its
    job ended in this run without writing one: `unrecorded` says why, by network id (killed,
    say), and the task is `failed` (whatever status an earlier run left). `skipped`: the
    entries of the source that gave no task (as :func:`mrfbatch.tasks.read_skipped` gives
    them: the first ones kept, and how many there were). `whitelist`: the run's codes, to say
    which ones no file read has.
    """
    tasks = list(tasks)
    # the entry takes the task's plans; a workflow job's status holds none, but one written
    # by an earlier mrfbatch may (thousands, for an index's file): not kept twice
    statuses = [_without_plans(read_json_object(layout.status(t.network_id))) for t in tasks]
    unrecorded = unrecorded or {}
    for at, task in enumerate(tasks):
        why = unrecorded.get(task.network_id)
        if why is not None:  # retryable: more memory or room may help
            statuses[at] = {"status": "failed", "error": why, "retryable": True}
    extractions = [
        _entry(task, status, layout) for task, status in zip(tasks, statuses, strict=True)
    ]
    entries, total = skipped
    count = {status: sum(e["status"] == status for e in extractions) for status in STATUSES}
    return {
        "extraction_run": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_type": source_type,
        "source_input": redact_url(source_input),
        "output_dir": layout.output_dir,
        "total_tasks": len(extractions),
        "skipped_entries": [{"where": e.where, "reason": e.reason} for e in entries],
        "skipped_entries_total": max(total, len(entries)),
        "extractions": extractions,
        "summary": {
            "successful": count["success"],
            "incomplete": count["incomplete"],
            "failed": count["failed"],
            "not_run": count["not_run"],
            **{
                key: sum(e.get(key) or 0 for e in extractions)
                for key in (
                    "rate_rows",
                    "provider_rows",
                    "allowed_amount_rows",
                    "allowed_amount_provider_rows",
                    "items_matched",
                    "bytes_read",
                )
            },
            "codes_listed": None if whitelist is None else len(whitelist),
            "codes_not_found": _codes_not_found(whitelist, statuses),
        },
    }


def _codes_not_found(
    whitelist: Collection[str] | None, statuses: Sequence[dict[str, Any] | None]
) -> list[str] | None:
    """The codes of `whitelist` that no file with tables has an item of, sorted; None without
    a whitelist, or when a file's status does not say which codes it has (from an older
    mrfbatch, or written with another whitelist)."""
    if whitelist is None:
        return None
    found: set[str] = set()
    for status in statuses:
        if status is None or status.get("status") not in ("success", "incomplete"):
            continue
        matched = status.get("matched_codes")
        if not isinstance(matched, dict) or status.get("whitelist_size") != len(whitelist):
            return None
        found.update(matched)
    return sorted(set(whitelist) - found)


def _entry(task: Task, status: dict[str, Any] | None, layout: RunLayout) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "url": redact_url(task.url),
        "network_id": task.network_id,
        "file_kind": _expected_kind(task),
        "status": "not_run",
        "duration_seconds": None,
        "output_files": {},
        "log_file": layout.task_log(task.network_id),
        "error": None,
        "retryable": None,
        "incomplete": [],
        **dict.fromkeys(COUNTS),
        "warnings": [],
        "plan_metadata": list(task.plan_metadata),
        "file_metadata": {},
    }
    if status is None:
        entry["error"] = "no status: the task has not run, or was interrupted"
        return entry
    entry.update(
        status=status.get("status") if status.get("status") in STATUSES else "failed",
        # what the extraction found the file to be; else (a status from before file kinds, a
        # failure before the file was read) what the source listed it as
        file_kind=status.get("file_kind") or _expected_kind(task),
        duration_seconds=status.get("duration_seconds"),
        output_files=status.get("output_files") or {},
        error=status.get("error"),
        retryable=status.get("retryable"),
        incomplete=status.get("incomplete") or [],
        warnings=status.get("warnings") or [],
        file_metadata=status.get("file_metadata") or {},
        **{key: status.get(key) for key in COUNTS},
    )
    return entry


def _without_plans(status: dict[str, Any] | None) -> dict[str, Any] | None:
    if status is not None:
        status.pop("plan_metadata", None)
    return status


def _expected_kind(task: Task) -> str:
    """The kind of file the task's source says it is (an index's tasks), else in-network."""
    kind = task.extra_args.get("file_kind")
    return kind if isinstance(kind, str) else IN_NETWORK


def write_manifest(manifest: dict[str, Any], path: str) -> None:
    """Write atomically: a reader never sees half a manifest."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)  # laid out as _PLANS_START and _PLANS_END say


# How write_manifest lays out an extraction's plans (json.dump, indent=2): its keys are 6
# spaces in, and the list ends on the first line that is those 6 spaces and "]" (the lines of
# its plans are further in, and no JSON string holds a newline).
_PLANS_START = b'\n      "plan_metadata": ['
_PLANS_END = b"\n      ]"


def read_manifest_without_plans(path: str) -> dict[str, Any] | None:
    """The manifest at `path` with each extraction's `plan_metadata` None, or None when there
    is none or it is unreadable.

    The summary and the report need no plans, and a run over an index may list millions of
    plan-file pairs (a 243 MB manifest of 1.5 million took 0.9 GB and 1.5 s to read whole).
    Their text is passed over unread where write_manifest laid it out; a manifest laid out
    otherwise is read whole.
    """
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            text = _without_plan_lists(data)
        manifest = json.loads(text)
    except (OSError, ValueError):  # ValueError: an empty file, or not laid out as written
        manifest = read_json_object(path)
    if not isinstance(manifest, dict):
        return None
    for entry in manifest.get("extractions") or ():
        if isinstance(entry, dict):
            entry["plan_metadata"] = None
    return manifest


def _without_plan_lists(data: mmap.mmap) -> bytes:
    """The manifest's text with every extraction's list of plans emptied."""
    pieces = []
    at = 0
    while (start := data.find(_PLANS_START, at)) >= 0:
        head = start + len(_PLANS_START)
        end = data.find(_PLANS_END, head)
        if data[head : head + 1] == b"]" or end < 0:  # already empty; or not as written
            end = head
        pieces.append(data[at:head])
        at = end
    pieces.append(data[at:])
    return b"".join(pieces)
