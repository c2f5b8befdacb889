"""Where each file of a workflow run lives: the one place that knows the path names.

Every path is `{output_dir}/...` (logs: `{log_dir}/...`, by default `{output_dir}/logs`), so
two runs into two output folders never share a file. The methods take a network id, or the
text `"{network_id}"` to give Snakemake a pattern:

    >>> RunLayout("results").done("{network_id}")
    'results/{network_id}/.done'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# mrfbatch-query's default output_dir: the same as config/schema.yaml's, where the workflow
# takes its default from.
DEFAULT_OUTPUT_DIR = "results"
# Files and folders of a run in {output_dir}, beside the network-id folders.
TASKS_FILE = "tasks.tsv"
SKIPPED_FILE = "skipped-entries.json"  # the source's entries that gave no task (beside tasks.tsv)
MANIFEST_FILE = "manifest.json"
RUN_PROGRESS_FILE = "progress.json"
SOURCE_PROGRESS_FILE = ".source-progress.json"  # while an index is read: how far (progress.py)
LOGS_FOLDER = "logs"  # the default log_dir
BATCH_INPUT_FILE = "batch-input.csv"  # execute_batch's tasks as a CSV source
LOCK_FILE = ".mrfbatch.lock"
# Rewritten whenever a run's end, not the manifest rule, writes the manifest (mrfbatch.finish):
# the rule's params hold its text, so the next run's Snakemake redoes the rule.
MANIFEST_MARK_FILE = ".manifest-written-at-end"
# The run's results for analysis (mrfbatch.results, mrfbatch.database, mrfbatch.report).
PLANS_FILE = "plans.parquet"  # one row per (network id, plan)
FILES_FILE = "files.parquet"  # one row per task: the manifest as a table
DATABASE_FILE = "mrfbatch.duckdb"  # views over this run's tables
REPORT_FILE = "report.html"
FIGURES_FOLDER = "figures"  # the report's figures, one SVG per billing code
# Names a network id may not take (compared ignoring case): they are the run's own.
RUN_FILES = frozenset(
    {TASKS_FILE, SKIPPED_FILE, MANIFEST_FILE, RUN_PROGRESS_FILE, LOGS_FOLDER, BATCH_INPUT_FILE}
    | {PLANS_FILE, FILES_FILE, DATABASE_FILE, REPORT_FILE, FIGURES_FOLDER}
    | {f"{BATCH_INPUT_FILE}.tmp"}
)

# Files of one extraction, in {output_dir}/{network_id}/ (run_extraction writes them).
# The kinds of file extracted (status.json `file_kind`) and the tables each kind's folder
# holds: {name}.parquet, or {name}.csv. A folder holds the tables of one kind only.
IN_NETWORK = "in-network"
ALLOWED_AMOUNTS = "allowed-amounts"
KIND_TABLES = {
    IN_NETWORK: ("rates", "providers"),
    ALLOWED_AMOUNTS: ("allowed_amounts", "allowed_amount_providers"),
}
TABLES = tuple(table for tables in KIND_TABLES.values() for table in tables)  # of every kind
FORMATS = ("parquet", "csv")  # a table's file extension, as `output_format` names it
STATUS_FILE = "status.json"
PROGRESS_FILE = ".progress.json"  # while it runs: how far it is (mrfbatch.progress)
DONE_FILE = ".done"  # the workflow's mark of a finished task (see mrfbatch.workflow)
# A mark of work done with other settings, set aside until the task is redone, or the settings
# are those of the mark again (see mrfbatch.workflow.task_targets).
SET_ASIDE_DONE_FILE = ".done.set-aside"
# Temporary files of an extraction (writers: `.{table}.tmp-{pid}`; the provider store's spill
# file; the JSON files' `.{name}.tmp-{pid}`). One extraction per folder at a time, so any
# found at the start were left by a killed run (`.sqlite`: the store of earlier versions).
TASK_TEMPORARIES = (
    *(f".{table}.*.tmp-*" for table in TABLES),
    f".{STATUS_FILE}.tmp-*",
    ".providers-*.spill",
    ".providers-*.sqlite",
    PROGRESS_FILE,
    f"{PROGRESS_FILE}.tmp-*",
)


def table_files(folder: Path, output_format: str, file_kind: str = IN_NETWORK) -> dict[str, Path]:
    """Each table's final path in the folder of an extraction of a `file_kind` file."""
    return {table: folder / f"{table}.{output_format}" for table in KIND_TABLES[file_kind]}


def spill_file(pid: int) -> str:
    """The provider store's file of the extraction run by process `pid`."""
    return f".providers-{pid}.spill"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run into `output_dir`."""

    output_dir: str
    log_dir: str | None = None  # None: {output_dir}/logs

    @property
    def logs(self) -> str:
        return self.log_dir or os.path.join(self.output_dir, LOGS_FOLDER)

    @property
    def tasks(self) -> str:
        return os.path.join(self.output_dir, TASKS_FILE)

    @property
    def skipped(self) -> str:
        """The entries of the source that gave no task (mrfbatch.tasks.write_skipped)."""
        return os.path.join(self.output_dir, SKIPPED_FILE)

    @property
    def manifest(self) -> str:
        return os.path.join(self.output_dir, MANIFEST_FILE)

    @property
    def manifest_mark(self) -> str:
        """Rewritten when a run's end writes the manifest (mrfbatch.finish.manifest_mark)."""
        return os.path.join(self.output_dir, MANIFEST_MARK_FILE)

    @property
    def progress(self) -> str:
        """The run's state while it runs (mrfbatch.console writes it)."""
        return os.path.join(self.output_dir, RUN_PROGRESS_FILE)

    @property
    def source_progress(self) -> str:
        """How far the read of an index source is, while it is read (mrfbatch.sources.index)."""
        return os.path.join(self.output_dir, SOURCE_PROGRESS_FILE)

    @property
    def plans(self) -> str:
        return os.path.join(self.output_dir, PLANS_FILE)

    @property
    def files(self) -> str:
        return os.path.join(self.output_dir, FILES_FILE)

    @property
    def database(self) -> str:
        return os.path.join(self.output_dir, DATABASE_FILE)

    @property
    def report(self) -> str:
        return os.path.join(self.output_dir, REPORT_FILE)

    @property
    def figures(self) -> str:
        return os.path.join(self.output_dir, FIGURES_FOLDER)

    @property
    def report_log(self) -> str:
        return os.path.join(self.logs, "report.log")

    @property
    def lock(self) -> str:
        return os.path.join(self.output_dir, LOCK_FILE)

    @property
    def batch_input(self) -> str:
        """execute_batch's tasks, written as a csv source."""
        return os.path.join(self.output_dir, BATCH_INPUT_FILE)

    @property
    def tasks_log(self) -> str:
        return os.path.join(self.logs, "tasks.log")

    @property
    def manifest_log(self) -> str:
        return os.path.join(self.logs, "manifest.log")

    def task_dir(self, network_id: str) -> str:
        return os.path.join(self.output_dir, network_id)

    def status(self, network_id: str) -> str:
        return os.path.join(self.output_dir, network_id, STATUS_FILE)

    def task_progress(self, network_id: str) -> str:
        return os.path.join(self.output_dir, network_id, PROGRESS_FILE)

    def done(self, network_id: str) -> str:
        return os.path.join(self.output_dir, network_id, DONE_FILE)

    def set_aside_done(self, network_id: str) -> str:
        return os.path.join(self.output_dir, network_id, SET_ASIDE_DONE_FILE)

    def task_log(self, network_id: str) -> str:
        return os.path.join(self.logs, "extract", f"{network_id}.log")
