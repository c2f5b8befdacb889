"""The end of a workflow run: the manifest, the run's tables and database, the report, and the
summary on the console (Snakemake's `manifest` and `report` rules, its onsuccess and onerror)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrfbatch import console
from mrfbatch.joblog import log_to, say, stop_logging
from mrfbatch.jsonfile import read_json_object
from mrfbatch.manifest import build_manifest, write_manifest
from mrfbatch.results import files_table, plans_table, write_table
from mrfbatch.tasks import read_skipped, read_tasks
from mrfbatch.workflow import Run

log = logging.getLogger("mrfbatch")


def write_run_manifest(run: Run, tasks_path: str) -> dict[str, Any]:
    """Build and write manifest.json from the tasks and whatever statuses exist, and the
    tables and database made from them: plans.parquet, files.parquet, mrfbatch.duckdb."""
    settings = run.settings
    layout = run.layout
    has_tasks = Path(tasks_path).is_file()
    tasks = read_tasks(tasks_path) if has_tasks else []
    skipped = read_skipped(layout.skipped) if has_tasks else ([], 0)
    manifest = build_manifest(
        tasks, layout, settings["source"], str(settings["input"]), skipped, run.codes()
    )
    if not has_tasks:
        manifest["error"] = (
            f"the {settings['source']} source could not be turned into tasks; see "
            f"{layout.tasks_log}"
        )
    from mrfbatch.database import build_database  # DuckDB: not for every extraction job

    entries = manifest["extractions"]
    by_id = {entry["network_id"]: entry for entry in entries}
    write_table(plans_table(tasks, by_id), layout.plans)
    write_table(files_table(entries), layout.files)
    build_database(layout, entries)
    write_manifest(manifest, layout.manifest)
    return manifest


def write_run_report(run: Run) -> list[str]:
    """Write report.html and its figures from the run's manifest and database; the figures."""
    import duckdb  # not for every extraction job

    from mrfbatch.report import write_report

    layout = run.layout
    manifest = read_json_object(layout.manifest) or {}
    with duckdb.connect(layout.database, read_only=True) as con:
        figures = write_report(con, manifest, run.codes(), layout.report, layout.figures)
    return [str(path) for path in figures]


def manifest_job(settings: Mapping[str, Any], tasks_path: str, log_path: str) -> int:
    """The `manifest` rule's job: :func:`write_run_manifest`; its exit status.

    An error is logged with its traceback to `log_path` (the console names the log)."""
    return _local_job(lambda: write_run_manifest(Run.from_config(settings), tasks_path), log_path)


def report_job(settings: Mapping[str, Any], log_path: str) -> int:
    """The `report` rule's job: :func:`write_run_report`; its exit status, as manifest_job."""
    return _local_job(lambda: write_run_report(Run.from_config(settings)), log_path)


def _local_job(step: Callable[[], object], log_path: str) -> int:
    handlers = log_to(log_path, echo=False)
    try:
        step()
    except Exception:
        log.exception("the step failed")
        return 1
    finally:
        stop_logging(handlers)
    return 0


def finish_run(run: Run, write: bool) -> None:
    """The end of a run (Snakemake's onsuccess and onerror): the summary on the console.

    `write`: build the manifest, its tables and the report here (onerror: a failed job kept
    their rules from running), else read the manifest the rule wrote.
    """
    manifest = None if write else read_json_object(run.layout.manifest)
    if manifest is None:
        manifest = write_run_manifest(run, run.layout.tasks)
        if Path(run.layout.tasks).is_file():
            try:
                write_run_report(run)
            except Exception as exc:  # the summary matters more than the report
                log.exception("report.html could not be written")
                say(f"error: report.html could not be written: {exc}")
    console.finish(manifest)
