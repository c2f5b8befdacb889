"""What one extraction did (status.json), and the protocol that publishes its outputs.

The tables are written under temporary names, and complete there, before status.json is; then
they are renamed, status.json last. So `status.json` saying success (or incomplete) means both
tables of its file kind are there; no run, failed or killed at any point, leaves a partial
table under a final name; and a run killed in the middle of the renames leaves tables without
a status.json, which the next run of the same network id removes first (`clear_folder`), with
every temporary file and the tables of the other format or file kind (a folder never holds
rates.parquet beside rates.csv, nor rates.parquet beside allowed_amounts.parquet).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mrfbatch.layout import (
    FORMATS,
    IN_NETWORK,
    KIND_TABLES,
    STATUS_FILE,
    TASK_TEMPORARIES,
    table_files,
)
from mrfbatch.tables import FILE_METADATA_KEYS
from mrfbatch.writers import TableWriter

log = logging.getLogger("mrfbatch")

# The exit status of a command that ran an extraction, for each status (2 is a usage error).
EXIT_STATUS = {"success": 0, "failed": 1, "incomplete": 3}


def timestamp() -> str:
    """Now, as status.json's `started_at` and `finished_at` say it (ISO 8601, UTC, seconds).

    The workflow compares its own start with `started_at` as text: both come from here.
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ExtractionResult:
    """What one extraction did; `to_dict()` is the content of status.json.

    `status` is `success`, `incomplete` (the tables are written, but lack data the file points
    to: `incomplete` says what, and `retryable` whether a rerun may read it) or `failed` (no
    tables: `error` says why, and `retryable` whether trying again may succeed).
    """

    network_id: str
    url: str
    file_kind: str = IN_NETWORK  # or ALLOWED_AMOUNTS: which tables the folder holds
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
    allowed_amount_rows: int = 0
    allowed_amount_provider_rows: int = 0
    unresolved_references: int = 0
    remote_references_fetched: int = 0
    remote_references_failed: int = 0
    # the first 100 failed locations: {"url": without secrets, "error": why, naming it,
    # "retryable": whether another try may read it}
    remote_failures: list[dict[str, Any]] = field(default_factory=list)
    unknown_keys: int = 0
    unknown_key_names: dict[str, int] = field(default_factory=dict)
    invalid_values: int = 0
    warnings: list[str] = field(default_factory=list)
    file_metadata: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(FILE_METADATA_KEYS)
    )
    plan_metadata: list[dict[str, Any]] | None = None
    whitelist_size: int | None = None
    # with a whitelist of at most whitelist.CODES_COUNTED codes, the items matched by each code that
    # matched any (normalized, sorted)
    matched_codes: dict[str, int] | None = None
    output_files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def has_tables(self) -> bool:
        """Whether the tables were written (success or incomplete)."""
        return self.status in ("success", "incomplete")

    @property
    def exit_status(self) -> int:
        """The exit status of a command (or workflow job) that ran this extraction."""
        return EXIT_STATUS[self.status]

    def to_dict(self) -> dict[str, Any]:
        """The fields by name, each list and dict copied one level deep: what they hold is
        shared (dataclasses.asdict copied every plan of plan_metadata, twice per job: 0.13 s
        for a file an index gives 5,000 plans)."""
        return {f.name: _copied(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _copied(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def clear_folder(folder: Path) -> None:
    """Remove what an earlier run of the same network id left: its status.json and tables, in
    any format and of either file kind (never beside this run's status), and the temporary
    files of a run that was killed."""
    tables = [
        path
        for fmt in FORMATS
        for kind in KIND_TABLES
        for path in table_files(folder, fmt, kind).values()
    ]
    for stale in (folder / STATUS_FILE, *tables):
        stale.unlink(missing_ok=True)
    for pattern in TASK_TEMPORARIES:
        for leftover in folder.glob(pattern):
            leftover.unlink(missing_ok=True)


def publish(
    folder: Path,
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
    status_path = folder / STATUS_FILE
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
            result.error = output_error(exc, status_path.parent)
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
            output_error(exc, status_path.parent),
        )


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_ROOM = (*DISK_FULL, errno.EFBIG)  # a write that found no room: also a file size limit


def output_error(exc: OSError, folder: Path) -> str:
    """What went wrong writing outputs, naming the file (or the folder) it happened to."""
    if exc.errno in NO_ROOM:
        failure = write_failure(exc, exc.filename or folder)
        return f"{failure}; no table was kept{room_to_write(exc, folder)}"
    if exc.filename:
        return write_failure(exc, exc.filename)
    return f"cannot write outputs under {folder}: {os.strerror(exc.errno) if exc.errno else exc}"


def write_failure(exc: OSError, where: str | Path) -> str:
    """Why writing the file `where` failed, in words: a full disk, a file size limit, or the
    system's reason."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in DISK_FULL:
        full = "the disk is full" if exc.errno == errno.ENOSPC else "the disk quota is used up"
        return f"{full} ({reason}) while writing {where}"
    if exc.errno == errno.EFBIG:
        return f"{where} reached the largest file size allowed ({reason})"
    return f"cannot write {where}: {reason}"


def room_to_write(exc: OSError, folder: str | Path) -> str:
    """What to do when `exc` says the disk is full, as the end of a message: free space under
    `folder`, then run again (nothing for another error)."""
    return f": free space under {folder}, then run again" if exc.errno in DISK_FULL else ""


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
