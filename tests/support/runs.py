"""A run made as the workflow makes it, without Snakemake: extractions, then the manifest step
(manifest, plans and files tables, database); and queries of its database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from mrfbatch import finish, workflow
from mrfbatch.layout import RunLayout
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.tasks import Task, write_tasks


def make_run(
    workdir: Path,
    files: dict[str, Path],
    plans: dict[str, list[dict[str, Any]]] | None = None,
    output_format: str = "parquet",
    extra: dict[str, dict[str, Any]] | None = None,
) -> RunLayout:
    """Extract `files` (network id -> file) into workdir/results as a workflow run does, then
    write the run's manifest, tables and database."""
    layout = RunLayout(str(workdir / "results"))
    tasks = [
        Task(
            network_id,
            str(path),
            tuple((plans or {}).get(network_id, [])),
            (extra or {}).get(network_id, {}),
        )
        for network_id, path in sorted(files.items())
    ]
    write_tasks(tasks, layout.tasks, layout.output_dir)
    for task in tasks:
        run_extraction(
            task.url,
            layout.output_dir,
            ExtractionOptions(output_format=output_format),
            network_id=task.network_id,
        )
    settings = {
        "source": "csv",
        "input": "plans.csv",
        "output_dir": layout.output_dir,
        "log_dir": None,
        "format": output_format,
    }
    finish.write_run_manifest(workflow.Run.from_config(settings), layout.tasks)
    return layout


def query(layout: RunLayout, sql: str) -> list[tuple[Any, ...]]:
    """The rows of `sql` on the run's database, opened read-only."""
    with duckdb.connect(layout.database, read_only=True) as con:
        rows: list[tuple[Any, ...]] = con.execute(sql).fetchall()
    return rows
