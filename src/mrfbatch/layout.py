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

# Files of one extraction, in {output_dir}/{network_id}/ (run_extraction writes them).
STATUS_FILE = "status.json"
PROGRESS_FILE = ".progress.json"  # while it runs: how far it is (mrfbatch.progress)
DONE_FILE = ".done"  # the workflow's mark of a finished task (see mrfbatch.workflow)


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run into `output_dir`."""

    output_dir: str
    log_dir: str | None = None  # None: {output_dir}/logs

    @property
    def logs(self) -> str:
        return self.log_dir or os.path.join(self.output_dir, "logs")

    @property
    def tasks(self) -> str:
        return os.path.join(self.output_dir, "tasks.tsv")

    @property
    def manifest(self) -> str:
        return os.path.join(self.output_dir, "manifest.json")

    @property
    def progress(self) -> str:
        """The run's state while it runs (mrfbatch.console writes it)."""
        return os.path.join(self.output_dir, "progress.json")

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

    def task_log(self, network_id: str) -> str:
        return os.path.join(self.logs, "extract", f"{network_id}.log")
