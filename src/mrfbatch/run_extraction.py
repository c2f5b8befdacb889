"""Extract one in-network-rates file into rate and provider tables.

As a function::

    from mrfbatch.run_extraction import run_extraction
    result = run_extraction("https://example.org/in-network.json.gz", "results",
                            cpt_whitelist=["99213", "27447"])
    result.status, result.rate_rows

As a command::

    python -m mrfbatch.run_extraction --url URL --output-dir DIR [--cpt-whitelist FILE]

Exit status 0 on success, 1 when the extraction failed (status.json says why), 2 on a usage
error, 3 when it is incomplete: the tables are written but lack data the file points to (remote
provider-reference files that could not be fetched; status.json says what). See docs/output.md
for the tables and status.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
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
from mrfbatch.engines import DEFAULT_MAX_VALUE_MB, ENGINES, Engine, get_engine
from mrfbatch.errors import MrfError, RestartFromZero, TransportError, UsageError
from mrfbatch.handler import Extraction
from mrfbatch.layout import PROGRESS_FILE, STATUS_FILE
from mrfbatch.network_ids import check_network_id, derive_network_id
from mrfbatch.progress import Snapshot, Ticker, human_bytes, write_snapshot
from mrfbatch.providers import ProviderStore
from mrfbatch.redact import RedactingFormatter, redact_text, redact_url
from mrfbatch.tables import FILE_METADATA_KEYS, PROVIDERS_SCHEMA, RATES_SCHEMA, Quality
from mrfbatch.transport import ByteSource, TransferStats, TransportSettings, open_source
from mrfbatch.whitelist import load_whitelist
from mrfbatch.writers import FORMATS, TableWriter

log = logging.getLogger("mrfbatch")

# Temporary files of an extraction; one extraction per folder at a time, so any found at the
# start were left by a killed run (`.sqlite`: the provider store of earlier versions).
_TEMPORARY = (
    ".rates.*.tmp-*",
    ".providers.*.tmp-*",
    ".status.json.tmp-*",
    ".providers-*.spill",
    ".providers-*.sqlite",
    PROGRESS_FILE,
    f"{PROGRESS_FILE}.tmp-*",
)

# The exit status of the command line for each status (2 is a usage error).
EXIT_STATUS = {"success": 0, "failed": 1, "incomplete": 3}


@dataclass
class ExtractionResult:
    """What one extraction did; `to_dict()` is the content of status.json.

    `status` is `success`, `incomplete` (the tables are written, but lack data the file points
    to: `incomplete` says what) or `failed` (no tables: `error` says why, and `retryable`
    whether trying again may succeed).
    """

    network_id: str
    url: str
    status: str = "failed"
    error: str | None = None
    retryable: bool | None = None
    incomplete: list[str] = field(default_factory=list)
    engine: str = "fast"
    started_at: str = ""
    finished_at: str = ""
    duration_seconds: float = 0.0
    bytes_read: int = 0
    bytes_decoded: int = 0
    compression: str | None = None
    retries: int = 0
    resumes: int = 0
    restarts: int = 0
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

    @property
    def has_tables(self) -> bool:
        """Whether the tables were written (success or incomplete)."""
        return self.status in ("success", "incomplete")

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
    max_value_mb: int = DEFAULT_MAX_VALUE_MB,
) -> ExtractionResult:
    """Stream `url` and write `{output_dir}/{network_id}/` (rates, providers, status.json).

    Bad input never raises: the result (and status.json) says `failed` and why. Invalid
    arguments raise UsageError before anything is written. `max_value_mb`: an in_network item
    or provider reference larger than this fails the extraction, and a remote provider-reference
    file larger than this is skipped with a warning (when `engine` is an Engine object, its own
    limit counts instead).

    A transfer that breaks is resumed where it stopped (see mrfbatch.transport). When it cannot
    be (the server ignores ranges, or the file changed), everything read so far is thrown away
    (rows, provider store, temporary tables) and the file is read again from its first byte, at
    most `settings.restarts` times; `retries`, `resumes` and `restarts` in the result count
    what it took over all of them.

    While it runs, `{output_dir}/{network_id}/.progress.json` says how far it is (see
    mrfbatch.progress); it is removed at the end.

    The tables are written under temporary names, and complete there, before status.json is;
    then they are renamed, status.json last. So `status.json` saying success means both tables
    are there; no run, failed or killed at any point, leaves a partial table under a final
    name; and a run killed in the middle of the renames leaves tables without a status.json,
    which the next run of the same network id removes first, as it removes every temporary file.
    """
    _check_arguments(provider_batch_size, rate_batch_size, output_format)
    if not isinstance(max_value_mb, int) or isinstance(max_value_mb, bool) or max_value_mb < 1:
        raise UsageError(f"max_value_mb must be a positive integer, got {max_value_mb!r}")
    if isinstance(engine, str) and engine not in ENGINES:
        raise UsageError(f"engine {engine!r} is not one of: {', '.join(ENGINES)}")
    settings = settings or TransportSettings()
    network_id = derive_network_id(url) if network_id is None else network_id
    check_network_id(network_id)  # one folder inside output_dir, never a path out of it
    out_dir = Path(output_dir) / network_id
    out_dir.mkdir(parents=True, exist_ok=True)
    status_path = out_dir / STATUS_FILE
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
    stats = TransferStats()
    run: _Pass | None = None
    try:
        whitelist = None if cpt_whitelist is None else load_whitelist(cpt_whitelist)
        result.whitelist_size = None if whitelist is None else len(whitelist)
        if whitelist is None:
            log.warning("no billing-code whitelist: every item is extracted; outputs may be large")
        parser = get_engine(engine, threads, max_value_mb) if isinstance(engine, str) else engine
        log.info("extracting %s into %s", result.url, out_dir)
        while True:
            run = _Pass(
                network_id, whitelist, final, rate_batch_size, provider_batch_size, output_format
            )
            try:
                run.scan(url, settings, stats, parser)
                break
            except RestartFromZero as exc:
                run.discard()
                if result.restarts >= settings.restarts:
                    raise TransportError(
                        f"{exc} (gave up after {result.restarts} restarts from the start)"
                    ) from exc
                result.restarts += 1
                log.warning(
                    "%s; restart %d of %d: the %d items matched so far are discarded",
                    exc,
                    result.restarts,
                    settings.restarts,
                    run.handler.items_matched if run.handler is not None else 0,
                )
        assert run.store is not None and run.handler is not None and run.rates is not None
        run.rates.flush()  # no rate comes after the stream: the writer's thread encodes the last
        # row group while the provider rows are made
        run.report("finishing")
        remote = run.store.fetch_remote(run.handler.referenced, settings, parser.max_value)
        result.remote_references_fetched = remote.fetched
        result.remote_references_failed = remote.failed
        result.incomplete.extend(remote.warnings)  # the groups of those files have no rows
        for batch in run.store.columns(run.handler.referenced):
            run.providers.write_batch(batch)
        result.unresolved_references = run.store.unresolved(run.handler.referenced)
        if result.unresolved_references:
            result.warnings.append(
                f"{result.unresolved_references} provider_references ids used by rates are "
                "defined nowhere in the file"
            )
        for name, writer in (("rates", run.rates), ("providers", run.providers)):
            writer.finish()  # complete, under its temporary name
            result.output_files[name] = str(writer.path)
        result.status = "incomplete" if result.incomplete else "success"
    except MrfError as exc:
        result.error = str(exc)
        result.retryable = exc.retryable
    except OSError as exc:
        result.error = _output_error(exc, out_dir)
        result.retryable = True  # space may be freed, a mount come back
    except Exception as exc:  # a bug: keep the traceback in the log, report it in the status
        log.exception("internal error")
        result.error = f"internal error ({type(exc).__name__}: {exc}); see the log"
        result.retryable = isinstance(exc, MemoryError)  # more memory may help; a bug stays
    except BaseException:
        result.error = "interrupted"
        result.retryable = True
        raise
    finally:
        if run is not None:
            run.close()  # the provider store: its space is free for what follows
        (out_dir / PROGRESS_FILE).unlink(missing_ok=True)
        _fill_counts(result, run, stats, started)
        _redact(result, url)
        tables = (run.rates, run.providers) if run is not None else ()
        _publish(status_path, result, tables, final.values())
    _log_outcome(result)
    return result


class _Pass:
    """One read of the file from its first byte, and what it fills: tables, provider store."""

    def __init__(
        self,
        network_id: str,
        whitelist: frozenset[str] | None,
        final: dict[str, Path],
        rate_batch_size: int,
        provider_batch_size: int,
        output_format: str,
    ):
        self.network_id = network_id
        self.whitelist = whitelist
        self.quality = Quality()
        self.rates = TableWriter(final["rates"], RATES_SCHEMA, rate_batch_size, output_format)
        self.providers = TableWriter(
            final["providers"], PROVIDERS_SCHEMA, provider_batch_size, output_format
        )
        self.spill = final["rates"].parent / f".providers-{os.getpid()}.spill"
        self.progress_path = final["rates"].parent / PROGRESS_FILE
        self.started = time.time()
        self.store: ProviderStore | None = None
        self.handler: Extraction | None = None
        self.raw: ByteSource | None = None
        self.stream: DecodedStream | None = None

    def scan(
        self,
        url: str,
        settings: TransportSettings,
        stats: TransferStats,
        parser: Engine,
    ) -> None:
        """Stream the file through `parser` into the tables and the provider store."""
        self.store = ProviderStore(self.spill, self.network_id, self.quality)
        self.handler = Extraction(
            self.network_id, self.whitelist, self.rates, self.store, self.quality
        )
        with open_source(url, settings, stats) as raw:
            self.raw = raw
            ticker = Ticker(self.snapshot, self._write_progress, _log_progress)
            self.stream = DecodedStream(raw, on_read=ticker.tick)
            parser.scan(self.stream, self.handler)  # type: ignore[arg-type]
            self.handler.finish()

    def snapshot(self, phase: str = "reading") -> Snapshot:
        """How far this pass is."""
        return Snapshot(
            network_id=self.network_id,
            started=self.started,
            updated=time.time(),
            bytes_read=self.raw.bytes_read if self.raw is not None else 0,
            bytes_total=self.raw.expected_length if self.raw is not None else None,
            bytes_decoded=self.stream.bytes_decoded if self.stream is not None else 0,
            items_seen=self.handler.items_seen if self.handler is not None else 0,
            items_matched=self.handler.items_matched if self.handler is not None else 0,
            rate_rows=self.rates.rows_written + self.rates.pending,
            phase=phase,
        )

    def report(self, phase: str) -> None:
        """Say in the progress file that the pass is in `phase`."""
        self._write_progress(self.snapshot(phase))

    def _write_progress(self, snapshot: Snapshot) -> None:
        try:
            write_snapshot(self.progress_path, snapshot)
        except OSError as exc:  # progress is a courtesy: a full disk fails the tables instead
            log.debug("progress file %s not written: %s", self.progress_path, exc)

    def discard(self) -> None:
        """Delete everything this pass wrote (temporary tables, the provider store)."""
        self.rates.abort()
        self.providers.abort()
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _check_arguments(provider_batch: int, rate_batch: int, fmt: str) -> None:
    for name, value in (("provider_batch_size", provider_batch), ("rate_batch_size", rate_batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if fmt not in FORMATS:
        raise UsageError(f"output format {fmt!r} is not one of: {', '.join(FORMATS)}")


def _publish(
    status_path: Path,
    result: ExtractionResult,
    tables: Sequence[TableWriter],
    finals: Iterable[Path],
) -> None:
    """Rename finished tables into place, then status.json; or discard them and say why.

    status.json is written under its temporary name first: a full disk fails the extraction
    before any table has its final name. A failed status is written after the tables are
    deleted, so their space is free for it; if even that cannot be written, the error is
    logged and the folder is left without outputs.
    """
    if result.has_tables:
        try:
            staged = _stage_status(status_path, result)
            try:
                for table in tables:
                    table.publish()
                os.replace(staged, status_path)
            except OSError:
                staged.unlink(missing_ok=True)
                raise
            _sync_folder(status_path.parent)
            return
        except OSError as exc:
            result.status = "failed"
            result.error = _output_error(exc, status_path.parent)
            result.retryable = True
    result.output_files = {}
    for table in tables:
        table.abort()
    for path in finals:
        path.unlink(missing_ok=True)
    try:
        os.replace(_stage_status(status_path, result), status_path)
    except OSError as exc:
        log.error(
            "%s: status.json could not be written either: %s",
            result.network_id,
            _output_error(exc, status_path.parent),
        )


def _output_error(exc: OSError, folder: Path) -> str:
    """What went wrong writing outputs, naming the file (or the folder) it happened to."""
    where = exc.filename or folder
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        full = "the disk is full" if exc.errno == errno.ENOSPC else "the disk quota is used up"
        return (
            f"{full} ({reason}) while writing {where}; no table was kept: free space under "
            f"{folder} and run again"
        )
    if exc.errno == errno.EFBIG:
        return f"{where} reached the largest file size allowed ({reason}); no table was kept"
    if exc.filename:
        return f"cannot write {exc.filename}: {reason}"
    return f"cannot write outputs under {folder}: {reason}"


def _fill_counts(
    result: ExtractionResult, run: _Pass | None, stats: TransferStats, started: float
) -> None:
    result.finished_at = _now()
    result.duration_seconds = round(time.monotonic() - started, 3)
    result.retries = stats.retries
    result.resumes = stats.resumes
    if run is None:
        return
    result.bytes_read = run.raw.bytes_read if run.raw is not None else 0
    result.bytes_decoded = run.stream.bytes_decoded if run.stream is not None else 0
    if run.stream is not None:
        result.compression = run.stream.compression
    if run.handler is not None:
        result.items_seen = run.handler.items_seen
        result.items_matched = run.handler.items_matched
        result.file_metadata = run.handler.file_metadata
    result.rate_rows = run.rates.rows_written
    result.provider_rows = run.providers.rows_written
    quality = run.quality
    result.unknown_keys = quality.unknown_keys
    result.unknown_key_names = dict(quality.unknown_key_names)
    result.invalid_values = quality.invalid_values
    if quality.invalid_values:
        examples = "; ".join(quality.invalid_examples[:5])
        result.warnings.append(f"{quality.invalid_values} values had the wrong type: {examples}")


def _redact(result: ExtractionResult, url: str) -> None:
    """Keep the secrets of `url`, and of any URL, out of the error and warnings.

    Whatever built the message (http.client repeats a request target, query string and all),
    status.json, the log and the manifest show it without them.
    """
    if result.error:
        result.error = redact_text(result.error, [url])
    result.warnings = [redact_text(warning, [url]) for warning in result.warnings]
    result.incomplete = [redact_text(missing, [url]) for missing in result.incomplete]


def status_text(result: ExtractionResult) -> str:
    """The content of status.json."""
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _stage_status(path: Path, result: ExtractionResult) -> Path:
    """Write status.json under its temporary name, to disk; return that name."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(status_text(result))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, os.strerror(exc.errno), str(tmp)) from exc
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable (they are done; a failure here changes nothing)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _log_progress(snapshot: Snapshot) -> None:
    log.info(
        "read %s (%s of JSON); items %s seen, %s matched; %s rate rows",
        snapshot.describe(),
        human_bytes(snapshot.bytes_decoded),
        f"{snapshot.items_seen:,}",
        f"{snapshot.items_matched:,}",
        f"{snapshot.rate_rows:,}",
    )


def _log_outcome(result: ExtractionResult) -> None:
    if result.has_tables:
        log.info(
            "%s: %s, %d items matched of %d, %d rate rows, %d provider rows, %.1f s",
            result.network_id,
            result.status,
            result.items_matched,
            result.items_seen,
            result.rate_rows,
            result.provider_rows,
            result.duration_seconds,
        )
    else:
        log.error("%s: failed: %s", result.network_id, result.error)
    for missing in result.incomplete:
        log.warning("%s: incomplete: %s", result.network_id, missing)
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
        "--max-value-mb",
        type=_positive_int,
        default=DEFAULT_MAX_VALUE_MB,
        help="fail on an in_network item or provider reference larger than this (MB of 2**20 "
        f"bytes, default {DEFAULT_MAX_VALUE_MB}) instead of running out of memory; a remote "
        "provider-reference file larger than this is skipped with a warning",
    )
    p.add_argument(
        "--plan-metadata", type=_plan_metadata, help="JSON list of plan objects, or @file.json"
    )
    p.add_argument(
        "--attempts",
        type=_positive_int,
        default=TransportSettings.attempts,
        help="tries per HTTP request for connection errors, 408, 429 and 5xx",
    )
    p.add_argument(
        "--retry-seconds",
        type=_seconds,
        default=TransportSettings.retry_seconds,
        help="longest time a request is retried, from its first try (default %(default)g)",
    )
    p.add_argument(
        "--backoff-seconds",
        type=_seconds,
        default=TransportSettings.backoff_seconds,
        help="first wait between retries, doubled each time (default %(default)g)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=TransportSettings.read_timeout,
        help="seconds without data before a connection is dropped and resumed "
        "(default %(default)g)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", [args.url]))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[console])
    settings = TransportSettings(
        attempts=args.attempts,
        read_timeout=args.timeout,
        retry_seconds=args.retry_seconds,
        backoff_seconds=args.backoff_seconds,
    )
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
            max_value_mb=args.max_value_mb,
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return EXIT_STATUS[result.status]


if __name__ == "__main__":
    sys.exit(main())
