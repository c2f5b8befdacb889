"""The original batch command line, now a front end to the Snakemake workflow.

    python -m mrfbatch.batch_orchestrator --source csv --input plans.csv --workers 4

runs `snakemake --cores 4 --configfile CONFIG` (CONFIG: source=csv, input=plans.csv, ...) on
this project's Snakefile in the current directory; the run prints a line per file and its
summary, then this command prints the counts on standard output. `--dry-run` prints what would
run, `--quiet` only the summary. `execute_batch` is the same from Python, for a list of URLs or
task dicts. Exit status: Snakemake's (0 when every file succeeded), 2 for a usage error.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mrfbatch.config import check_config, load_schema, workflow_root
from mrfbatch.errors import UsageError
from mrfbatch.layout import RunLayout
from mrfbatch.sources import load_tasks
from mrfbatch.sources.locations import is_relative_path
from mrfbatch.summary import RERUN_VARIABLE, files, redone_text
from mrfbatch.tasks import Task
from mrfbatch.workflow import Run, why_not_done

__all__ = ["dry_run", "execute_batch", "read_manifest", "run_workflow", "workflow_root"]


def snakemake_command(configfile: str | Path, workers: int, extra: Sequence[str] = ()) -> list[str]:
    """The snakemake command line that runs the workflow with the config in `configfile`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(workflow_root() / "Snakefile"),
        "--cores",
        str(workers),
        *extra,
        "--configfile",
        str(configfile),
    ]


def run_workflow(
    config: Mapping[str, Any],
    workers: int = 1,
    extra: Sequence[str] = (),
    rerun: str | None = None,
) -> int:
    """Run the workflow in the current directory; Snakemake's exit status.

    The config goes to Snakemake in a file, not as `--config key=value`: Snakemake writes its
    command line into its log (.snakemake/log), and a signed index or URL must not be there.
    The file is made in `output_dir` (jobs on other machines see it there) and removed after.
    `rerun` is the command the run's summary shows to run it again.
    """
    if workers < 1:
        raise UsageError(f"workers must be a positive integer, got {workers}")
    settings = {key: value for key, value in config.items() if value is not None}
    folder = Path(str(settings.get("output_dir") or "results"))
    folder.mkdir(parents=True, exist_ok=True)
    fd, configfile = tempfile.mkstemp(prefix=".batch-config-", suffix=".json", dir=folder)
    environment = dict(os.environ)
    if rerun:
        environment[RERUN_VARIABLE] = rerun
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        command = snakemake_command(configfile, workers, extra)
        return subprocess.run(command, check=False, env=environment).returncode
    finally:
        os.unlink(configfile)


def read_manifest(output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(RunLayout(str(output_dir)).manifest)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        empty = {"successful": 0, "incomplete": 0, "failed": 0, "not_run": 0}
        return {"summary": empty, "extractions": []}
    return data


def execute_batch(
    tasks: Iterable[str | Task | Mapping[str, Any]],
    output_dir: str | os.PathLike[str],
    workers: int = 1,
    cpt_whitelist: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    **config: Any,
) -> dict[str, Any]:
    """Extract every task with the workflow and return the manifest.

    `tasks` are URLs, `Task`s, or dicts with a `url` (or `file_url`) and plan fields; a
    relative path is relative to the working directory. Other keyword arguments are workflow
    config keys (`provider_batch_size`, `retries`, ...; see config/config.yaml): a misspelled
    one raises ConfigError before anything runs. `quiet` shows only the run's summary.

    >>> execute_batch(["https://payer.example/a.json.gz"], "results", workers=2)  # doctest: +SKIP
    """
    out = Path(output_dir)
    source = Path(RunLayout(str(out)).batch_input)
    settings = {
        "source": "csv",
        "input": str(source),
        "output_dir": str(out),
        "cpt_whitelist": None if cpt_whitelist is None else str(cpt_whitelist),
        **config,
    }
    if quiet:
        settings["console"] = "quiet"
    check_config({**settings, "input": None}, load_schema(), check_files=False)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(tasks, source)
    run_workflow(settings, workers, rerun="the same execute_batch(...) call")
    return read_manifest(out)


def _write_csv(tasks: Iterable[str | Task | Mapping[str, Any]], path: Path) -> None:
    rows: list[dict[str, str]] = []
    for task in tasks:
        if isinstance(task, str):
            rows.append({"file_url": _absolute(task)})
        elif isinstance(task, Task):
            plans = task.plan_metadata or ({},)
            rows.extend({"file_url": _absolute(task.url), **_flat(plan)} for plan in plans)
        else:
            url = task.get("url") or task.get("file_url")
            if not url:
                raise UsageError(f"task {dict(task)!r} has no url")
            plan = {k: v for k, v in task.items() if k not in ("url", "file_url")}
            rows.append({"file_url": _absolute(str(url)), **_flat(plan)})
    columns = ["file_url", *sorted({k for row in rows for k in row} - {"file_url"})]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _absolute(location: str) -> str:
    # The CSV is in output_dir, and a relative path in a CSV is relative to the CSV's folder.
    return os.path.join(os.getcwd(), location) if is_relative_path(location) else location


def _flat(plan: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in plan.items()}


def dry_run(settings: Mapping[str, Any]) -> str:
    """What a run would do, without running anything: the tasks, and which are done."""
    run = Run.from_config(settings)
    tasks = load_tasks(
        settings["source"], str(settings["input"]), file_types=settings["file_types"]
    )
    todo: list[str] = []
    redone: Counter[str] = Counter()
    for task in tasks:
        why = why_not_done(run, task)  # as the run will find it, changing nothing
        if why is not None:
            todo.append(task.network_id)
        if why:
            redone[why] += 1
    line = (
        f"dry run: {settings['source']} source {settings['input']}: {files(len(tasks))}; "
        f"{len(tasks) - len(todo):,} already done, {len(todo):,} would be extracted"
        f"{redone_text(redone)}"
    )
    if todo:
        shown = ", ".join(todo[:10]) + (f" and {len(todo) - 10:,} more" if len(todo) > 10 else "")
        line += f": {shown}"
    return line


if __name__ == "__main__":
    from mrfbatch.cli import batch_main

    sys.exit(batch_main())
