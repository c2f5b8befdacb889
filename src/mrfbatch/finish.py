"""The end of a workflow run: the manifest, the run's tables and database, the report, and the
summary on the console (Snakemake's `manifest` and `report` rules, its onsuccess and onerror)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mrfbatch import console
from mrfbatch.joblog import log_to, quiet_on_ctrl_c, stop_logging
from mrfbatch.layout import RunLayout
from mrfbatch.manifest import build_manifest, read_manifest_without_plans, write_manifest
from mrfbatch.results import files_table, write_plans, write_table
from mrfbatch.status import room_to_write, write_failure
from mrfbatch.tasks import read_skipped, read_tasks
from mrfbatch.workflow import RUN_STARTED_VARIABLE, Run

log = logging.getLogger("mrfbatch")


class RunOutputError(Exception):
    """The run's manifest, its tables or its database could not be written (a full disk)."""

    def __init__(self, message: str, manifest: dict[str, Any]):
        super().__init__(message)
        self.manifest = manifest  # the run's outcome all the same, for the summary


def write_run_manifest(
    run: Run, tasks_path: str, unrecorded: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build and write manifest.json from the tasks and whatever statuses exist, and the
    tables and database made from them: plans.parquet, files.parquet, mrfbatch.duckdb.
    `unrecorded`: see mrfbatch.manifest.build_manifest.

    When one cannot be written, none of them is left (an earlier run's would pass for this
    one's), and RunOutputError says which and why.
    """
    settings = run.settings
    layout = run.layout
    has_tasks = Path(tasks_path).is_file()
    tasks = read_tasks(tasks_path) if has_tasks else []
    skipped = read_skipped(layout.skipped) if has_tasks else ([], 0)
    manifest = build_manifest(
        tasks, layout, settings["source"], str(settings["input"]), skipped, run.codes(), unrecorded
    )
    if not has_tasks:
        manifest["error"] = (
            f"the {settings['source']} source could not be turned into tasks; see "
            f"{layout.tasks_log}"
        )
    from mrfbatch.database import build_database  # DuckDB: not for every extraction job

    entries = manifest["extractions"]
    by_id = {entry["network_id"]: entry for entry in entries}
    steps: list[tuple[str, Callable[[], object]]] = [
        (layout.plans, lambda: write_plans(tasks, by_id, layout.plans)),
        (layout.files, lambda: write_table(files_table(entries), layout.files)),
        (layout.database, lambda: build_database(layout, entries)),
        (layout.manifest, lambda: write_manifest(manifest, layout.manifest)),
    ]
    for path, write in steps:
        try:
            write()
        except OSError as exc:
            for written, _ in steps:
                with contextlib.suppress(OSError):  # a folder of that name, say
                    Path(written).unlink(missing_ok=True)
            raise RunOutputError(
                f"{write_failure(exc, path)}; the run's manifest.json, plans.parquet, "
                "files.parquet and mrfbatch.duckdb are not written"
                f"{room_to_write(exc, layout.output_dir)}",
                manifest,
            ) from exc
    return manifest


def write_run_report(run: Run) -> list[str]:
    """Write report.html and its figures from the run's manifest and database; the figures."""
    import duckdb  # not for every extraction job

    from mrfbatch.report import write_report

    layout = run.layout
    manifest = read_manifest_without_plans(layout.manifest) or {}
    with duckdb.connect(layout.database, read_only=True) as con:
        figures = write_report(con, manifest, run.codes(), layout.report, layout.figures)
    return [str(path) for path in figures]


@quiet_on_ctrl_c
def manifest_job(settings: Mapping[str, Any], tasks_path: str, log_path: str) -> int:
    """The `manifest` rule's job: :func:`write_run_manifest`; its exit status.

    An error is logged with its traceback to `log_path` (the console names the log)."""
    step = functools.partial(write_run_manifest, Run.from_config(settings), tasks_path)
    return 0 if _logged(step, log_path) is None else 1


@quiet_on_ctrl_c
def report_job(settings: Mapping[str, Any], log_path: str) -> int:
    """The `report` rule's job: :func:`write_run_report`; its exit status, as manifest_job."""
    step = functools.partial(write_run_report, Run.from_config(settings))
    return 0 if _logged(step, log_path) is None else 1


def _logged(step: Callable[[], object], log_path: str) -> Exception | None:
    """Run `step`, logging to `log_path`; the exception that stopped it, logged there."""
    handlers = log_to(log_path, echo=False)
    try:
        step()
    except RunOutputError as exc:  # said in full: no traceback needed
        log.error("%s", exc)
        return exc
    except Exception as exc:
        log.exception("the step failed")
        return exc
    finally:
        stop_logging(handlers)
    return None


def finish_run(run: Run, write: bool) -> None:
    """The end of a run (Snakemake's onsuccess and onerror): the summary on the console.

    `write` (onerror: a failed job kept the manifest and report rules from running, or one of
    them failed): write here the manifest, its tables and the report that this run has not
    written; else read the manifest the rule wrote. What cannot be written is said in the
    summary (`unwritten`, a key of the manifest in memory only), with what to do.
    """
    console.finish(_outcome(run, write))


def _outcome(run: Run, write: bool) -> dict[str, Any]:
    """The manifest the summary tells, once written as finish_run says."""
    layout = run.layout
    fresh = not write or _written_in_this_run(layout.manifest)
    manifest = read_manifest_without_plans(layout.manifest) if fresh else None
    if manifest is None:
        try:  # the console knows the jobs that ended without their status
            manifest = write_run_manifest(run, layout.tasks, console.unrecorded())
            _mark_manifest(layout)
        except RunOutputError as exc:
            manifest = {**exc.manifest, "unwritten": str(exc)}
    if (
        write
        and "unwritten" not in manifest
        and Path(layout.tasks).is_file()
        and not _written_in_this_run(layout.report)
    ):
        error = _logged(functools.partial(write_run_report, run), layout.report_log)
        if error is not None:  # the summary matters more than the report
            manifest = {**manifest, "unwritten": _report_error(error, layout)}
    return manifest


def finish_idle_run(run: Run) -> dict[str, Any]:
    """The manifest of a run Snakemake found nothing to do for, for its summary.

    Snakemake does not redo a deleted manifest, table of plans or files, or database while the
    report made from them is up to date; the run writes them again here (and the report).
    """
    layout = run.layout
    manifest = read_manifest_without_plans(layout.manifest)  # read once
    tables = (layout.plans, layout.files, layout.database)
    if manifest is not None and all(os.path.isfile(path) for path in tables):
        return manifest
    return _outcome(run, write=True)


def manifest_mark(layout: RunLayout) -> str:
    """The text of the manifest's mark: a param of the manifest rule.

    Snakemake keeps, for each output, the params of the rule run that wrote it, and redoes a
    rule whose params changed. When a run's end writes the manifest itself (a job failed),
    Snakemake still holds an older run's record: after a run of another source, or of the same
    CSV less a row, it found the manifest up to date, and its summary, tables and database
    described the run before. The mark is rewritten each time, so the next run redoes the rule.
    """
    try:
        return Path(layout.manifest_mark).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return ""


def _mark_manifest(layout: RunLayout) -> None:
    with contextlib.suppress(OSError):  # a full disk: the manifest itself was not written
        Path(layout.manifest_mark).write_text(f"{time.time_ns()}-{os.getpid()}\n", "utf-8")


def _report_error(exc: Exception, layout: RunLayout) -> str:
    if not isinstance(exc, OSError):
        return f"report.html could not be written: {exc}; see {layout.report_log}"
    # os.replace names the temporary file first, the report second
    why = write_failure(exc, exc.filename2 or exc.filename or layout.report)
    return f"report.html could not be written: {why}{room_to_write(exc, layout.output_dir)}"


def _written_in_this_run(path: str) -> bool:
    started = os.environ.get(RUN_STARTED_VARIABLE)
    if started is None or not os.path.isfile(path):
        return False
    return os.stat(path).st_mtime >= datetime.fromisoformat(started).timestamp()
