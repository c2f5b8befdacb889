"""The original batch command line, now a front end to the Snakemake workflow.

    python -m mrfbatch.batch_orchestrator --source csv --input plans.csv --workers 4

runs `snakemake --cores 4 --configfile CONFIG` (CONFIG: source=csv, input=plans.csv, ...) on
this project's Snakefile in the current directory, then prints the manifest summary.
`execute_batch` is the same from Python, for a list of URLs or task dicts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mrfbatch.errors import UsageError
from mrfbatch.sources import SOURCE_TYPES, Task, is_relative_path
from mrfbatch.workflow import check_config


def workflow_root() -> Path:
    """The folder holding the Snakefile: $MRFBATCH_WORKFLOW, or this checkout's root."""
    configured = os.environ.get("MRFBATCH_WORKFLOW")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2]
    if not (root / "Snakefile").is_file():
        raise UsageError(
            f"no Snakefile in {root}: run from a checkout of mrfbatch (pip install -e .) or set "
            "MRFBATCH_WORKFLOW to the folder that holds the Snakefile"
        )
    return root


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


def run_workflow(config: Mapping[str, Any], workers: int = 1, extra: Sequence[str] = ()) -> int:
    """Run the workflow in the current directory; Snakemake's exit status.

    The config goes to Snakemake in a file, not as `--config key=value`: Snakemake writes its
    command line into its log (.snakemake/log), and a signed index or URL must not be there.
    The file is made in `output_dir` (jobs on other machines see it there) and removed after.
    """
    if workers < 1:
        raise UsageError(f"workers must be a positive integer, got {workers}")
    settings = {key: value for key, value in config.items() if value is not None}
    folder = Path(str(settings.get("output_dir") or "results"))
    folder.mkdir(parents=True, exist_ok=True)
    fd, configfile = tempfile.mkstemp(prefix=".batch-config-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        return subprocess.run(snakemake_command(configfile, workers, extra), check=False).returncode
    finally:
        os.unlink(configfile)


def read_manifest(output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(output_dir) / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"summary": {"successful": 0, "failed": 0, "not_run": 0}, "extractions": []}
    return data


def execute_batch(
    tasks: Iterable[str | Task | Mapping[str, Any]],
    output_dir: str | os.PathLike[str],
    workers: int = 1,
    cpt_whitelist: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Extract every task with the workflow and return the manifest.

    `tasks` are URLs, `Task`s, or dicts with a `url` (or `file_url`) and plan fields; a
    relative path is relative to the working directory. Other keyword arguments are workflow
    config keys (`provider_batch_size`, `retries`, ...).

    >>> execute_batch(["https://payer.example/a.json.gz"], "results", workers=2)  # doctest: +SKIP
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = out / "batch-input.csv"
    _write_csv(tasks, source)
    config = {
        "source": "csv",
        "input": str(source),
        "output_dir": str(out),
        "cpt_whitelist": None if cpt_whitelist is None else str(cpt_whitelist),
        **kwargs,
    }
    run_workflow(config, workers)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mrfbatch.batch_orchestrator",
        description="Extract every in-network file a source lists (runs the Snakemake workflow).",
    )
    p.add_argument("--source", required=True, choices=SOURCE_TYPES)
    p.add_argument("--input", required=True, help="source file, or URL for index/url")
    p.add_argument("--output-dir", default="results")
    p.add_argument("--workers", type=int, default=1, help="extractions at once (Snakemake cores)")
    p.add_argument("--cpt-whitelist")
    p.add_argument("--provider-batch-size", type=int)
    p.add_argument("--rate-batch-size", type=int)
    p.add_argument("--retries", type=int, help="Snakemake retries of a failed extraction")
    p.add_argument("--attempts", type=int, help="tries per HTTP request (connection errors, 5xx)")
    p.add_argument("--retry-seconds", type=float, help="longest time one request is retried")
    p.add_argument("--timeout", type=float, help="seconds without data before a resume")
    p.add_argument(
        "--max-value-mb",
        type=int,
        help="fail a file whose in_network item or provider reference is larger (MB; 2048)",
    )
    p.add_argument("--dry-run", action="store_true", help="show the jobs, run nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = {
        "source": args.source,
        "input": args.input,
        "output_dir": args.output_dir,
        "cpt_whitelist": args.cpt_whitelist,
        "provider_batch_size": args.provider_batch_size,
        "rate_batch_size": args.rate_batch_size,
        "retries": args.retries,
        "attempts": args.attempts,
        "retry_seconds": args.retry_seconds,
        "timeout": args.timeout,
        "max_value_mb": args.max_value_mb,
    }
    try:
        check_config({key: value for key, value in config.items() if value is not None})
        code = run_workflow(config, args.workers, ["--dry-run"] if args.dry_run else [])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot use output_dir {args.output_dir}: {exc}", file=sys.stderr)
        return 2
    if not args.dry_run:
        manifest = read_manifest(args.output_dir)
        summary = manifest["summary"]
        if manifest.get("error"):
            print(f"error: {manifest['error']}", file=sys.stderr)
        print(
            f"{summary['successful']} successful, {summary['failed']} failed, "
            f"{summary['not_run']} not run; manifest: {Path(args.output_dir) / 'manifest.json'}"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
