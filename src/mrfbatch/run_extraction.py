"""Extract one in-network-rates file into rate and provider tables, or one allowed-amounts
file into allowed-amount and provider tables.

    from mrfbatch.run_extraction import run_extraction
    result = run_extraction("https://example.org/in-network.json.gz", "results",
                            cpt_whitelist=["99213", "27447"])
    result.status, result.rate_rows

How (batch sizes, engine, limits, the transport's patience) is an `ExtractionOptions`
(mrfbatch.options); what comes out, and the order it is published in, is mrfbatch.status. The
command line `python -m mrfbatch.run_extraction` is in mrfbatch.cli. See docs/output.md for the
tables and status.json.
"""

from __future__ import annotations

if __name__ == "__main__":  # the command: before anything imports pyarrow (mrfbatch/lean.py)
    from mrfbatch import lean

    lean.set_up()

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mrfbatch.allowed_amounts import AllowedAmounts
from mrfbatch.compression import DecodedStream
from mrfbatch.engines import Engine, get_engine
from mrfbatch.errors import AllowedAmountsFile, MrfError, RestartFromZero, TransportError
from mrfbatch.handler import Extraction
from mrfbatch.layout import (
    ALLOWED_AMOUNTS,
    IN_NETWORK,
    KIND_TABLES,
    PROGRESS_FILE,
    spill_file,
    table_files,
)
from mrfbatch.network_ids import check_network_id, derive_network_id
from mrfbatch.options import ExtractionOptions
from mrfbatch.progress import Snapshot, Ticker, human_bytes, write_snapshot
from mrfbatch.providers import ProviderStore
from mrfbatch.redact import redact_text, redact_url
from mrfbatch.status import (
    ExtractionResult,
    clear_folder,
    output_error,
    publish,
    timestamp,
)
from mrfbatch.tables import TABLE_SCHEMAS, Quality
from mrfbatch.transport import ByteSource, TransferStats, TransportSettings, open_source
from mrfbatch.whitelist import decimals_note, load_whitelist
from mrfbatch.writers import TableWriter

log = logging.getLogger("mrfbatch")


def run_extraction(
    url: str,
    output_dir: str | os.PathLike[str],
    options: ExtractionOptions | None = None,
    *,
    network_id: str | None = None,
    cpt_whitelist: str | os.PathLike[str] | Iterable[str] | None = None,
    plan_metadata: list[dict[str, Any]] | None = None,
) -> ExtractionResult:
    """Stream `url` and write `{output_dir}/{network_id}/`: rates, providers and status.json
    for an in-network-rates file; allowed_amounts, allowed_amount_providers and status.json for
    an allowed-amounts file (top-level `out_of_network`), whatever the URL or the task says.

    Bad input never raises: the result (and status.json) says `failed` and why, or
    `incomplete` and what the tables lack. Invalid arguments raise UsageError before anything
    is written. `network_id` defaults to one made from the URL; `cpt_whitelist` (a file, or
    the codes) None keeps every item; `plan_metadata` is copied into status.json.

    A transfer that breaks is resumed where it stopped (see mrfbatch.transport). When it cannot
    be (the server ignores ranges, or the file changed), everything read so far is thrown away
    (rows, provider store, temporary tables) and the file is read again from its first byte, at
    most `options.transport.restarts` times; `retries`, `resumes` and `restarts` in the result
    count what it took over all of them.

    While it runs, `{output_dir}/{network_id}/.progress.json` says how far it is (see
    mrfbatch.progress); it is removed at the end. The outputs are published as mrfbatch.status
    says: a status.json saying success always has both tables of its file kind beside it.

    An allowed-amounts file is found out when the engine meets `out_of_network`: that pass is
    dropped and the file read again from byte 0 by the reference engine, whatever `engine`
    says (such files are small; it hands over one item at a time, each held to max_value_mb).
    """
    options = options or ExtractionOptions()
    settings = options.transport
    network_id = derive_network_id(url) if network_id is None else network_id
    check_network_id(network_id)  # one folder inside output_dir, never a path out of it
    out_dir = Path(output_dir) / network_id
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = [
        path
        for kind in KIND_TABLES
        for path in table_files(out_dir, options.output_format, kind).values()
    ]
    clear_folder(out_dir)  # the tables of another format too
    engine = options.engine
    result = ExtractionResult(
        network_id=network_id,
        url=redact_url(url),
        engine=engine if isinstance(engine, str) else engine.name,
        started_at=timestamp(),
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
        elif note := decimals_note(whitelist):
            log.warning("%s", note)
        parser = (
            get_engine(engine, options.threads, options.max_value_mb, options.validate)
            if isinstance(engine, str)
            else engine
        )
        log.info("extracting %s into %s", result.url, out_dir)
        kind = IN_NETWORK
        while True:
            run = _Pass(network_id, whitelist, out_dir, kind, options)
            try:
                run.scan(url, settings, stats, parser)
                break
            except AllowedAmountsFile:
                run.discard()
                kind = ALLOWED_AMOUNTS
                if parser.name != "reference":
                    from mrfbatch.engines.reference import ReferenceEngine

                    parser = ReferenceEngine(max_value=parser.max_value)
                result.engine = parser.name
                log.info("an allowed-amounts file (`out_of_network`): reading it again as one")
            except RestartFromZero as exc:
                run.discard()
                if result.restarts >= settings.restarts:
                    raise TransportError(
                        f"{exc} (gave up after {result.restarts} restart"
                        f"{'' if result.restarts == 1 else 's'} from the start)"
                    ) from exc
                result.restarts += 1
                log.warning(
                    "%s; restart %d of %d: the %d items matched so far are discarded",
                    exc,
                    result.restarts,
                    settings.restarts,
                    run.handler.items_matched if run.handler is not None else 0,
                )
        _finish(run, result, url, settings, stats, parser)
    except MrfError as exc:
        result.error = str(exc)
        result.retryable = exc.retryable
    except OSError as exc:
        result.error = output_error(exc, out_dir)
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
        tables = (run.rows, run.providers) if run is not None else ()
        publish(out_dir, result, tables, finals)
    _log_outcome(result)
    return result


def _finish(
    run: _Pass,
    result: ExtractionResult,
    url: str,
    settings: TransportSettings,
    stats: TransferStats,
    parser: Engine,
) -> None:
    """After the stream: remote provider files (their retries and resumes go into `stats`;
    a relative location is relative to `url`), the provider rows, the tables completed."""
    result.file_kind = run.kind
    if isinstance(run.handler, AllowedAmounts):
        _complete(run, result)
        return
    assert run.store is not None and run.handler is not None
    run.rows.flush()  # no rate comes after the stream: the writer's thread encodes the last
    # row group while the provider rows are made
    run.report("finishing")
    remote = run.store.fetch_remote(run.handler.referenced, settings, parser.max_value, url)
    result.remote_references_fetched = remote.fetched
    result.remote_references_failed = remote.failed
    result.remote_failures = remote.failures
    stats.retries += remote.retries
    stats.resumes += remote.resumes
    result.incomplete.extend(remote.warnings)  # the groups of those files have no rows
    if remote.failed:  # whether a rerun may read what is missing
        result.retryable = remote.retryable
    for batch in run.store.columns(run.handler.referenced):
        run.providers.write_batch(batch)
    result.unresolved_references = run.store.unresolved(run.handler.referenced)
    if result.unresolved_references:
        result.warnings.append(
            f"{result.unresolved_references} provider_references ids used by rates are "
            "defined nowhere in the file"
        )
    _complete(run, result)


def _complete(run: _Pass, result: ExtractionResult) -> None:
    """Both tables completed under their temporary names; the status that follows."""
    for name, writer in zip(KIND_TABLES[run.kind], (run.rows, run.providers), strict=True):
        writer.finish()  # complete, under its temporary name
        result.output_files[name] = str(writer.path)
    result.status = "incomplete" if result.incomplete else "success"


class _Pass:
    """One read of the file from its first byte, as a file of `kind`, and what it fills: the
    kind's two tables (`rows`: rates or allowed_amounts; `providers`), the provider store."""

    def __init__(
        self,
        network_id: str,
        whitelist: frozenset[str] | None,
        folder: Path,
        kind: str,
        options: ExtractionOptions,
    ):
        self.network_id = network_id
        self.whitelist = whitelist
        self.kind = kind
        self.quality = Quality()
        fmt = options.output_format
        (rows, rows_path), (providers, providers_path) = table_files(folder, fmt, kind).items()
        self.rows = TableWriter(rows_path, TABLE_SCHEMAS[rows], options.rate_batch_size, fmt)
        self.providers = TableWriter(
            providers_path, TABLE_SCHEMAS[providers], options.provider_batch_size, fmt
        )
        self.spill = folder / spill_file(os.getpid())
        self.progress_path = folder / PROGRESS_FILE
        self.started = time.time()
        self.store: ProviderStore | None = None
        self.handler: Extraction | AllowedAmounts | None = None
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
        if self.kind == ALLOWED_AMOUNTS:
            self.handler = AllowedAmounts(
                self.network_id, self.whitelist, self.rows, self.providers, self.quality
            )
        else:
            self.store = ProviderStore(self.spill, self.network_id, self.quality)
            self.handler = Extraction(
                self.network_id, self.whitelist, self.rows, self.store, self.quality
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
            rate_rows=self.rows.rows_written + self.rows.pending,
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
        self.rows.abort()
        self.providers.abort()
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _fill_counts(
    result: ExtractionResult, run: _Pass | None, stats: TransferStats, started: float
) -> None:
    result.finished_at = timestamp()
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
        matched = run.handler.codes.matched
        result.matched_codes = None if matched is None else dict(sorted(matched.items()))
        result.file_metadata = run.handler.file_metadata
    if run.kind == ALLOWED_AMOUNTS:
        result.allowed_amount_rows = run.rows.rows_written
        result.allowed_amount_provider_rows = run.providers.rows_written
    else:
        result.rate_rows = run.rows.rows_written
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
    for failure in result.remote_failures:
        failure["error"] = redact_text(failure["error"], [url])


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
    if result.has_tables and result.file_kind == ALLOWED_AMOUNTS:
        log.info(
            "%s: %s (allowed amounts), %d items matched of %d, %d payment rows, %d provider "
            "rows, %.1f s",
            result.network_id,
            result.status,
            result.items_matched,
            result.items_seen,
            result.allowed_amount_rows,
            result.allowed_amount_provider_rows,
            result.duration_seconds,
        )
    elif result.has_tables:
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


if __name__ == "__main__":
    import sys

    from mrfbatch.cli import extract_main

    sys.exit(extract_main())
