"""The run manifest: one entry per task, saying what succeeded, what failed and why."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mrfbatch.network_ids import redact_url
from mrfbatch.sources import Task

_COUNTS = (
    "bytes_read",
    "bytes_decoded",
    "retries",
    "resumes",
    "restarts",
    "items_seen",
    "items_matched",
    "rate_rows",
    "provider_rows",
    "unresolved_references",
    "remote_references_failed",
)


def status_paths(network_id: str, output_dir: str, log_dir: str) -> tuple[Path, Path]:
    """Where a task's status is: in its output folder (success), or beside its log (any)."""
    return (
        Path(output_dir) / network_id / "status.json",
        Path(log_dir) / "extract" / f"{network_id}.status.json",
    )


def log_path(network_id: str, log_dir: str) -> Path:
    return Path(log_dir) / "extract" / f"{network_id}.log"


def build_manifest(
    tasks: Iterable[Task], output_dir: str, log_dir: str, source_type: str, source_input: str
) -> dict[str, Any]:
    """Collect every task's status into the manifest (see docs/output.md).

    A task whose status cannot be found (never run, or interrupted) is `not_run`.
    """
    extractions = [_entry(task, output_dir, log_dir) for task in tasks]
    successful = sum(e["status"] == "success" for e in extractions)
    failed = sum(e["status"] == "failed" for e in extractions)
    return {
        "extraction_run": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_type": source_type,
        "source_input": redact_url(source_input),
        "output_dir": output_dir,
        "total_tasks": len(extractions),
        "extractions": extractions,
        "summary": {
            "successful": successful,
            "failed": failed,
            "not_run": len(extractions) - successful - failed,
            "rate_rows": sum(e.get("rate_rows") or 0 for e in extractions),
            "provider_rows": sum(e.get("provider_rows") or 0 for e in extractions),
        },
    }


def _entry(task: Task, output_dir: str, log_dir: str) -> dict[str, Any]:
    status = _read_status(task.network_id, output_dir, log_dir)
    entry: dict[str, Any] = {
        "url": redact_url(task.url),
        "network_id": task.network_id,
        "status": "not_run",
        "duration_seconds": None,
        "output_files": {},
        "log_file": str(log_path(task.network_id, log_dir)),
        "error": None,
        **dict.fromkeys(_COUNTS),
        "warnings": [],
        "plan_metadata": list(task.plan_metadata),
    }
    if status is None:
        entry["error"] = "no status: the task has not run, or was interrupted"
        return entry
    entry.update(
        status=status.get("status", "failed"),
        duration_seconds=status.get("duration_seconds"),
        output_files=status.get("output_files") or {},
        error=status.get("error"),
        warnings=status.get("warnings") or [],
        **{key: status.get(key) for key in _COUNTS},
    )
    return entry


def _read_status(network_id: str, output_dir: str, log_dir: str) -> dict[str, Any] | None:
    in_outputs, beside_log = status_paths(network_id, output_dir, log_dir)
    # The output copy is only there after a success (Snakemake deletes a failed job's outputs);
    # the copy beside the log is the latest attempt's, successful or not.
    for path in (in_outputs, beside_log):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def write_manifest(manifest: dict[str, Any], path: str) -> None:
    """Write atomically: a reader never sees half a manifest."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
