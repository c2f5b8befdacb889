"""The command lines, and the one place where errors become messages and exit codes.

    python -m mrfbatch.run_extraction --url URL --output-dir DIR [--cpt-whitelist FILE]
    python -m mrfbatch.batch_orchestrator --source csv --input plans.csv --workers 4

One extraction exits 0 on success, 1 when it failed (status.json says why), 3 when it is
incomplete (the tables lack data the file points to), 2 for a usage error. The batch command
exits with Snakemake's status (0 when every file succeeded), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mrfbatch import lean
from mrfbatch.engines import ENGINES, VALIDATIONS
from mrfbatch.errors import MrfError, UsageError
from mrfbatch.layout import FORMATS, RunLayout
from mrfbatch.options import ExtractionOptions
from mrfbatch.redact import RedactingFormatter, redact_text
from mrfbatch.transport import TransportSettings

USAGE_ERROR = 2


def extract_main(argv: Sequence[str] | None = None) -> int:
    """`python -m mrfbatch.run_extraction`: extract one file; see the module docstring."""
    lean.set_up()
    # imported here, after lean.set_up(): it imports pyarrow
    from mrfbatch.run_extraction import run_extraction

    args = extract_parser().parse_args(argv)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", [args.url]))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[console])
    try:
        options = ExtractionOptions(
            provider_batch_size=args.provider_batch_size,
            rate_batch_size=args.rate_batch_size,
            output_format=args.output_format,
            engine=args.engine,
            threads=args.threads,
            validate=args.validate,
            max_value_mb=args.max_value_mb,
            transport=TransportSettings(
                attempts=args.attempts,
                read_timeout=args.timeout,
                retry_seconds=args.retry_seconds,
                backoff_seconds=args.backoff_seconds,
            ),
        )
        result = run_extraction(
            args.url,
            args.output_dir,
            options,
            network_id=args.network_id,
            cpt_whitelist=args.cpt_whitelist,
            plan_metadata=args.plan_metadata,
        )
    except UsageError as exc:
        return _usage_error(exc)
    return result.exit_status


def batch_main(argv: Sequence[str] | None = None) -> int:
    """`python -m mrfbatch.batch_orchestrator`: run the workflow; Snakemake's exit status."""
    # The batch command's modules (the workflow, the sources, the config schema) are imported
    # here: an extraction's start-up does not pay for them.
    from mrfbatch.batch_orchestrator import dry_run, run_workflow
    from mrfbatch.config import check_config, load_schema
    from mrfbatch.manifest import read_manifest_without_plans

    arguments = list(sys.argv[1:] if argv is None else argv)
    args = batch_parser().parse_args(arguments)
    config = {
        "source": args.source,
        "input": args.input,
        "file_types": args.file_types,
        "output_dir": args.output_dir,
        "cpt_whitelist": args.cpt_whitelist,
        "provider_batch_size": args.provider_batch_size,
        "rate_batch_size": args.rate_batch_size,
        "format": args.output_format,
        "retries": args.retries,
        "attempts": args.attempts,
        "retry_seconds": args.retry_seconds,
        "timeout": args.timeout,
        "max_value_mb": args.max_value_mb,
        "console": "quiet" if args.quiet else None,
    }
    try:
        settings = check_config(config, load_schema())
        if args.dry_run:
            print(dry_run(settings))
            return 0
        command = shlex.join(["python", "-m", "mrfbatch.batch_orchestrator", *arguments])
        rerun = redact_text(command, [args.input])  # a signed URL's secrets stay off the console
        code = run_workflow(config, args.workers, rerun=rerun)
    except (MrfError, OSError) as exc:
        return _usage_error(exc, args.output_dir)
    manifest_path = RunLayout(args.output_dir).manifest
    summary = (read_manifest_without_plans(manifest_path) or {}).get("summary") or {}
    print(
        f"{summary.get('successful', 0)} successful, {summary.get('incomplete', 0)} incomplete, "
        f"{summary.get('failed', 0)} failed, {summary.get('not_run', 0)} not run; manifest: "
        f"{manifest_path}"
    )
    return code


def query_main(argv: Sequence[str] | None = None) -> int:
    """`mrfbatch-query "SQL"`: run SQL on a run's database; 0, or 1 when it failed."""
    from mrfbatch.query import database_path, open_database, run_query  # imports DuckDB

    args = query_parser().parse_args(argv)
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    try:
        with open_database(database_path(args.output_dir, args.database)) as con:
            run_query(con, sql, sys.stdout, csv=args.csv, max_rows=args.max_rows)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _usage_error(exc: Exception, output_dir: str | None = None) -> int:
    """Say what was wrong with how a command was called; its exit status."""
    if isinstance(exc, OSError):
        print(f"error: cannot use output_dir {output_dir}: {exc}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return USAGE_ERROR


def extract_parser() -> argparse.ArgumentParser:
    """The command line of one extraction (`python -m mrfbatch.run_extraction`)."""
    default = ExtractionOptions()
    p = argparse.ArgumentParser(
        prog="python -m mrfbatch.run_extraction",
        description="Extract negotiated rates and providers from one in-network-rates file.",
    )
    p.add_argument("--url", required=True, help="https://, http://, file:// URL or local path")
    p.add_argument("--output-dir", required=True, help="outputs go to OUTPUT_DIR/NETWORK_ID/")
    p.add_argument("--network-id", help="default: the file name without .json/.gz/.zip")
    p.add_argument("--cpt-whitelist", help="billing codes: one per line, or CSV with billing_code")
    p.add_argument("--provider-batch-size", type=_positive_int, default=default.provider_batch_size)
    p.add_argument("--rate-batch-size", type=_positive_int, default=default.rate_batch_size)
    p.add_argument("--format", choices=FORMATS, default=default.output_format, dest="output_format")
    p.add_argument(
        "--engine", choices=ENGINES, default=default.engine, help="fast (default) or reference"
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=default.threads,
        help="fast engine: 2 inflates gzip in a second thread (faster, uses two cores)",
    )
    p.add_argument(
        "--validate",
        choices=VALIDATIONS,
        default=default.validate,
        help="fast engine: 'structural' (default) checks only the structure of the items it "
        "skips (brackets, strings, escapes), 'full' every byte of them; what is extracted is "
        "always checked in full",
    )
    p.add_argument(
        "--max-value-mb",
        type=_positive_int,
        default=default.max_value_mb,
        help="fail on an in_network item or provider reference larger than this (MB of 2**20 "
        "bytes, default %(default)s) instead of running out of memory; a remote "
        "provider-reference file larger than this is skipped (the status: incomplete)",
    )
    p.add_argument(
        "--plan-metadata", type=_plan_metadata, help="JSON list of plan objects, or @file.json"
    )
    p.add_argument(
        "--attempts",
        type=_positive_int,
        default=default.transport.attempts,
        help="tries per HTTP request for connection errors, 408, 425, 429 and 5xx",
    )
    p.add_argument(
        "--retry-seconds",
        type=_seconds,
        default=default.transport.retry_seconds,
        help="longest time a request is retried, from its first try (default %(default)g)",
    )
    p.add_argument(
        "--backoff-seconds",
        type=_seconds,
        default=default.transport.backoff_seconds,
        help="first wait between retries, doubled each time (default %(default)g)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=default.transport.read_timeout,
        help="seconds without data before a connection is dropped and resumed "
        "(default %(default)g)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return p


def batch_parser() -> argparse.ArgumentParser:
    """The older batch command (`python -m mrfbatch.batch_orchestrator`)."""
    from mrfbatch.sources import FILE_TYPES, SOURCE_TYPES

    p = argparse.ArgumentParser(
        prog="python -m mrfbatch.batch_orchestrator",
        description="Extract every in-network file a source lists (runs the Snakemake workflow).",
    )
    p.add_argument(
        "--source",
        required=True,
        choices=SOURCE_TYPES,
        help="the kind of source; the file or URL itself goes in --input",
    )
    p.add_argument("--input", required=True, help="source file, or URL for index/url")
    p.add_argument(
        "--file-types",
        choices=FILE_TYPES,
        help="which files of an index become tasks (default: in_network)",
    )
    p.add_argument("--output-dir", default="results")
    p.add_argument("--workers", type=int, default=1, help="extractions at once (Snakemake cores)")
    p.add_argument("--cpt-whitelist")
    p.add_argument("--provider-batch-size", type=int)
    p.add_argument("--rate-batch-size", type=int)
    p.add_argument(
        "--format",
        choices=FORMATS,
        dest="output_format",
        help="the tables: parquet (default) or csv",
    )
    p.add_argument("--retries", type=int, help="Snakemake retries of a failed extraction")
    p.add_argument("--attempts", type=int, help="tries per HTTP request (connection errors, 5xx)")
    p.add_argument("--retry-seconds", type=float, help="longest time one request is retried")
    p.add_argument("--timeout", type=float, help="seconds without data before a resume")
    p.add_argument(
        "--max-value-mb",
        type=int,
        help="fail a file whose in_network item or provider reference is larger (MB)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print how many files the source lists and how many are done; run nothing",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary at the end")
    return p


def query_parser() -> argparse.ArgumentParser:
    """The command line of `mrfbatch-query` (`python -m mrfbatch.query`)."""
    p = argparse.ArgumentParser(
        prog="mrfbatch-query",
        description="Run SQL on a run's database (views rates, providers, rate_providers, "
        "plans, files; docs/analysis.md) and print the result.",
    )
    p.add_argument("sql", help="the SQL; - reads it from standard input")
    p.add_argument(
        "--output-dir",
        default=None,
        help="the run's output_dir, which holds mrfbatch.duckdb (default: results)",
    )
    p.add_argument("--database", default=None, help="the database file (instead of --output-dir)")
    p.add_argument("--csv", action="store_true", help="print CSV with a header, every row")
    p.add_argument(
        "--max-rows",
        type=_positive_int,
        default=40,
        help="rows shown in the table, the first and last ones (default: 40)",
    )
    return p


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {value!r}")
    return number


def _positive_seconds(value: str) -> float:
    try:
        number = _seconds(value)
    except argparse.ArgumentTypeError:
        number = 0.0
    if number == 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return number


def _plan_metadata(value: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(value[1:]).read_text() if value.startswith("@") else value)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON list of objects: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise argparse.ArgumentTypeError("expected a JSON object or a list of objects")
    return data
