"""Extract one in-network-rates file into rate and provider tables.

As a function::

    from mrfbatch.run_extraction import run_extraction
    result = run_extraction("https://example.org/in-network.json.gz", "results",
                            cpt_whitelist=["99213", "27447"])
    result.status, result.rate_rows

As a command::

    python -m mrfbatch.run_extraction --url URL --output-dir DIR [--cpt-whitelist FILE]

Exit status 0 on success, 1 when the extraction failed (status.json says why), 2 on a usage
error. See docs/output.md for the tables and status.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mrfbatch.compression import DecodedStream
from mrfbatch.engines import ENGINES, Engine, get_engine
from mrfbatch.errors import MrfError, UsageError
from mrfbatch.extraction import Extraction, Progress
from mrfbatch.network_ids import derive_network_id, redact_url
from mrfbatch.providers import ProviderStore
from mrfbatch.rows import FILE_METADATA_KEYS, Quality
from mrfbatch.transport import ByteSource, TransportSettings, open_source
from mrfbatch.whitelist import load_whitelist
from mrfbatch.writers import FORMATS, PROVIDERS_SCHEMA, RATES_SCHEMA, TableWriter

log = logging.getLogger("mrfbatch")

# Temporary files of an extraction; one extraction per folder at a time, so any found at the
# start were left by a killed run (`.sqlite`: the provider store of earlier versions).
_TEMPORARY = (
    ".rates.*.tmp-*",
    ".providers.*.tmp-*",
    ".status.json.tmp-*",
    ".providers-*.spill",
    ".providers-*.sqlite",
)


@dataclass
class ExtractionResult:
    """What one extraction did; `to_dict()` is the content of status.json."""

    network_id: str
    url: str
    status: str = "failed"
    error: str | None = None
    engine: str = "fast"
    started_at: str = ""
    finished_at: str = ""
    duration_seconds: float = 0.0
    bytes_read: int = 0
    bytes_decoded: int = 0
    compression: str | None = None
    items_seen: int = 0
    items_matched: int = 0
    rate_rows: int = 0
    provider_rows: int = 0
    unresolved_references: int = 0
    remote_references_fetched: int = 0
    remote_references_failed: int = 0
    unknown_keys: int = 0
    unknown_key_names: dict[str, int] = field(default_factory=dict)
    invalid_values: int = 0
    warnings: list[str] = field(default_factory=list)
    file_metadata: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(FILE_METADATA_KEYS)
    )
    plan_metadata: list[dict[str, Any]] | None = None
    whitelist_size: int | None = None
    output_files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_extraction(
    url: str,
    output_dir: str | os.PathLike[str],
    network_id: str | None = None,
    cpt_whitelist: str | os.PathLike[str] | Iterable[str] | None = None,
    provider_batch_size: int = 50_000,
    rate_batch_size: int = 100_000,
    plan_metadata: list[dict[str, Any]] | None = None,
    output_format: str = "parquet",
    settings: TransportSettings | None = None,
    engine: str | Engine = "fast",
    threads: int = 1,
) -> ExtractionResult:
    """Stream `url` and write `{output_dir}/{network_id}/` (rates, providers, status.json).

    Bad input never raises: the result (and status.json) says `failed` and why. Invalid
    arguments raise UsageError before anything is written.
    """
    _check_arguments(provider_batch_size, rate_batch_size, output_format)
    if isinstance(engine, str) and engine not in ENGINES:
        raise UsageError(f"engine {engine!r} is not one of: {', '.join(ENGINES)}")
    settings = settings or TransportSettings()
    network_id = network_id or derive_network_id(url)
    out_dir = Path(output_dir) / network_id
    out_dir.mkdir(parents=True, exist_ok=True)
    status_path = out_dir / "status.json"
    final = {
        "rates": out_dir / f"rates.{output_format}",
        "providers": out_dir / f"providers.{output_format}",
    }
    for stale in (status_path, *final.values()):  # never leave an older run's tables beside
        stale.unlink(missing_ok=True)  # this run's status
    for pattern in _TEMPORARY:  # left by a run that was killed
        for leftover in out_dir.glob(pattern):
            leftover.unlink(missing_ok=True)

    result = ExtractionResult(
        network_id=network_id,
        url=redact_url(url),
        engine=engine if isinstance(engine, str) else engine.name,
        started_at=_now(),
        plan_metadata=plan_metadata,
    )
    started = time.monotonic()
    quality = Quality()
    rates = TableWriter(final["rates"], RATES_SCHEMA, rate_batch_size, output_format)
    providers = TableWriter(
        final["providers"], PROVIDERS_SCHEMA, provider_batch_size, output_format
    )
    store: ProviderStore | None = None
    raw: ByteSource | None = None
    stream: DecodedStream | None = None
    handler: Extraction | None = None
    try:
        whitelist = None if cpt_whitelist is None else load_whitelist(cpt_whitelist)
        result.whitelist_size = None if whitelist is None else len(whitelist)
        if whitelist is None:
            log.warning("no billing-code whitelist: every item is extracted; outputs may be large")
        store = ProviderStore(out_dir / f".providers-{os.getpid()}.spill", network_id, quality)
        parser = get_engine(engine, threads) if isinstance(engine, str) else engine
        handler = Extraction(network_id, whitelist, rates, store, quality)
        log.info("extracting %s into %s", result.url, out_dir)
        with open_source(url, settings) as raw:
            progress = Progress(lambda: _progress_line(raw, stream, handler, rates, started))
            stream = DecodedStream(raw, on_read=progress.tick)
            result.compression = stream.compression
            parser.scan(stream, handler)  # type: ignore[arg-type]
            handler.finish()
        remote = store.fetch_remote(handler.referenced, settings)
        result.remote_references_fetched = remote.fetched
        result.remote_references_failed = remote.failed
        result.warnings.extend(remote.warnings)
        for columns, n in store.columns(handler.referenced):
            providers.write_columns(columns, n)
        result.unresolved_references = store.unresolved(handler.referenced)
        if result.unresolved_references:
            result.warnings.append(
                f"{result.unresolved_references} provider_references ids used by rates are "
                "defined nowhere in the file"
            )
        for name, writer in (("rates", rates), ("providers", providers)):
            result.output_files[name] = str(writer.commit())
        result.status = "success"
    except MrfError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"cannot write outputs under {out_dir}: {exc.strerror or exc}"
    except Exception as exc:  # a bug: keep the traceback in the log, report it in the status
        log.exception("internal error")
        result.error = f"internal error ({type(exc).__name__}: {exc}); see the log"
    except BaseException:
        result.error = "interrupted"
        raise
    finally:
        if result.status != "success":
            _discard(rates, providers, final.values())
            result.output_files = {}
        if store is not None:
            store.close()
        _fill_counts(result, raw, stream, handler, rates, providers, quality, started)
        _write_status(status_path, result)
    _log_outcome(result)
    return result


def _check_arguments(provider_batch: int, rate_batch: int, fmt: str) -> None:
    for name, value in (("provider_batch_size", provider_batch), ("rate_batch_size", rate_batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if fmt not in FORMATS:
        raise UsageError(f"output format {fmt!r} is not one of: {', '.join(FORMATS)}")


def _discard(rates: TableWriter, providers: TableWriter, finals: Iterable[Path]) -> None:
    rates.abort()
    providers.abort()
    for path in finals:
        path.unlink(missing_ok=True)


def _fill_counts(
    result: ExtractionResult,
    raw: ByteSource | None,
    stream: DecodedStream | None,
    handler: Extraction | None,
    rates: TableWriter,
    providers: TableWriter,
    quality: Quality,
    started: float,
) -> None:
    result.finished_at = _now()
    result.duration_seconds = round(time.monotonic() - started, 3)
    result.bytes_read = raw.bytes_read if raw is not None else 0
    result.bytes_decoded = stream.bytes_decoded if stream is not None else 0
    if handler is not None:
        result.items_seen = handler.items_seen
        result.items_matched = handler.items_matched
        result.file_metadata = handler.file_metadata
    result.rate_rows = rates.rows_written
    result.provider_rows = providers.rows_written
    result.unknown_keys = quality.unknown_keys
    result.unknown_key_names = dict(quality.unknown_key_names)
    result.invalid_values = quality.invalid_values
    if quality.invalid_values:
        examples = "; ".join(quality.invalid_examples[:5])
        result.warnings.append(f"{quality.invalid_values} values had the wrong type: {examples}")


def _write_status(path: Path, result: ExtractionResult) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(
        json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)


def _progress_line(
    raw: ByteSource,
    stream: DecodedStream | None,
    handler: Extraction | None,
    rates: TableWriter,
    started: float,
) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    decoded = stream.bytes_decoded if stream is not None else 0
    seen = handler.items_seen if handler is not None else 0
    matched = handler.items_matched if handler is not None else 0
    return (
        f"read {raw.bytes_read / 1e6:,.0f} MB ({decoded / 1e6:,.0f} MB JSON, "
        f"{decoded / 1e6 / elapsed:,.1f} MB/s); items {seen:,} seen, {matched:,} matched; "
        f"{rates.rows_written + rates.pending:,} rate rows"
    )


def _log_outcome(result: ExtractionResult) -> None:
    if result.ok:
        log.info(
            "%s: success, %d items matched of %d, %d rate rows, %d provider rows, %.1f s",
            result.network_id,
            result.items_matched,
            result.items_seen,
            result.rate_rows,
            result.provider_rows,
            result.duration_seconds,
        )
    else:
        log.error("%s: failed: %s", result.network_id, result.error)
    for warning in result.warnings:
        log.warning("%s: %s", result.network_id, warning)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Command line


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mrfbatch.run_extraction",
        description="Extract negotiated rates and providers from one in-network-rates file.",
    )
    p.add_argument("--url", required=True, help="https://, http://, file:// URL or local path")
    p.add_argument("--output-dir", required=True, help="outputs go to OUTPUT_DIR/NETWORK_ID/")
    p.add_argument("--network-id", help="default: the file name without .json/.gz/.zip")
    p.add_argument("--cpt-whitelist", help="billing codes: one per line, or CSV with billing_code")
    p.add_argument("--provider-batch-size", type=_positive_int, default=50_000)
    p.add_argument("--rate-batch-size", type=_positive_int, default=100_000)
    p.add_argument("--format", choices=FORMATS, default="parquet", dest="output_format")
    p.add_argument(
        "--engine", choices=ENGINES, default="fast", help="fast (default) or reference (ijson)"
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="fast engine: 2 inflates gzip in a second thread (faster, uses two cores)",
    )
    p.add_argument(
        "--plan-metadata", type=_plan_metadata, help="JSON list of plan objects, or @file.json"
    )
    p.add_argument(
        "--attempts",
        type=_positive_int,
        default=TransportSettings.attempts,
        help="tries per HTTP request for connection errors, 429 and 5xx",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=TransportSettings.read_timeout,
        help="seconds without data before a connection is given up",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    settings = TransportSettings(attempts=args.attempts, read_timeout=args.timeout)
    try:
        result = run_extraction(
            args.url,
            args.output_dir,
            network_id=args.network_id,
            cpt_whitelist=args.cpt_whitelist,
            provider_batch_size=args.provider_batch_size,
            rate_batch_size=args.rate_batch_size,
            plan_metadata=args.plan_metadata,
            output_format=args.output_format,
            settings=settings,
            engine=args.engine,
            threads=args.threads,
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
