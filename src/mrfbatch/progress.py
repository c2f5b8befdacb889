"""How far a running extraction (or the read of an index) is, in words and in a small file.

The extraction rewrites `{output_dir}/{network_id}/.progress.json` every few seconds, the
index source `{output_dir}/.source-progress.json`; the workflow's console reads them from
another process (on a cluster, over the shared file system) to show live progress:

    slow.json.gz: 45.0 of 120.0 MB (38%), 2.1 MB/s, 36 s left
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mrfbatch.compression import DecodedStream
from mrfbatch.jsonfile import read_json_object, write_json
from mrfbatch.transport import ByteSource

_MIN_SECONDS_FOR_RATE = 1.0  # a rate over less time says more about buffers than the network


@dataclass
class Snapshot:
    """One extraction's progress (times are seconds since the epoch), or an index's: its
    items are reporting structures."""

    network_id: str
    started: float
    updated: float
    bytes_read: int = 0
    bytes_total: int | None = None  # the file's size, when the server (or the disk) said it
    bytes_decoded: int = 0
    items_seen: int = 0
    items_matched: int = 0
    rate_rows: int = 0
    phase: str = "reading"  # reading the file; then "finishing": remote files, provider rows

    @property
    def percent(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(100.0, 100.0 * self.bytes_read / self.bytes_total)

    @property
    def rate(self) -> float:
        """Bytes per second read since the start."""
        return self.bytes_read / max(self.updated - self.started, 1e-9)

    def describe(self) -> str:
        """`45.0 of 120.0 MB (38%), 2.1 MB/s, 36 s left`, or without total what is known."""
        if self.phase != "reading":
            return f"{human_bytes(self.bytes_read)} read; writing the tables"
        timed = self.updated - self.started >= _MIN_SECONDS_FOR_RATE
        rate = f", {human_bytes(self.rate)}/s" if timed else ""
        percent = self.percent
        if percent is None or self.bytes_total is None:
            return f"{human_bytes(self.bytes_read)} read{rate}"
        read = human_bytes(self.bytes_read, like=self.bytes_total).rsplit(" ", 1)[0]  # no unit
        shown = f"{read} of {human_bytes(self.bytes_total)} ({percent:.0f}%){rate}"
        if timed and self.rate > 0 and self.bytes_read < self.bytes_total:
            shown += f", {human_seconds((self.bytes_total - self.bytes_read) / self.rate)} left"
        return shown


_UNITS = (("B", 1.0), ("kB", 1e3), ("MB", 1e6), ("GB", 1e9))


def human_bytes(count: float, like: float | None = None) -> str:
    """`512 B`, `12.3 kB`, `45.0 MB`, `2.3 GB` (decimal units; `like` picks the unit)."""
    scale = count if like is None else like
    at = max([i for i, (_, size) in enumerate(_UNITS) if scale >= size] or [0])
    digits = 0 if at == 0 else 1
    if at + 1 < len(_UNITS) and round(scale / _UNITS[at][1], digits) >= 1000:
        at += 1  # 999,999 B is 1.0 MB, not 1,000.0 kB
    unit, size = _UNITS[at]
    return f"{count / size:,.{0 if at == 0 else 1}f} {unit}"


def human_seconds(seconds: float) -> str:
    """`0.4 s`, `41 s`, `1 min 40 s`, `12 min`, `2 h 05 min`."""
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 100:
        return f"{whole} s"
    if whole < 600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest:02d} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def write_snapshot(path: str | os.PathLike[str], snapshot: Snapshot) -> None:
    """Replace the progress file atomically (a reader never sees half of it)."""
    write_json(path, asdict(snapshot), indent=None)


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot | None:
    """The snapshot in `path`, or None when there is none (yet, or any more) or it is unusable."""
    data = read_json_object(path)
    try:
        snapshot = Snapshot(**data) if data is not None else None
    except TypeError:  # other keys
        return None
    if snapshot is None:
        return None
    numbers = (snapshot.started, snapshot.updated, snapshot.bytes_read, snapshot.bytes_decoded)
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        return None  # written by something else: not worth a crash of the console
    if snapshot.bytes_total is not None and not isinstance(snapshot.bytes_total, int):
        return None
    return snapshot


def run_state(
    total: int | None,
    done_before: int | None,
    finished: Mapping[str, int],
    running: Mapping[str, Snapshot | None],
    not_success: Mapping[str, str],
    final: bool,
) -> dict[str, Any]:
    """The content of a workflow run's progress.json (mrfbatch.console writes it): how many
    tasks, how many were done before the run (None: not known yet), how many finished in it by
    status, the running ones with their snapshots, the tasks not successful by status."""
    entries = []
    for network_id, snap in running.items():
        entry: dict[str, Any] = {"network_id": network_id}
        if snap is not None:
            entry.update(
                bytes_read=snap.bytes_read,
                bytes_total=snap.bytes_total,
                percent=None if snap.percent is None else round(snap.percent, 1),
                phase=snap.phase,
            )
        entries.append(entry)
    return {
        "state": "finished" if final else "running",
        "updated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_tasks": total,
        "done_before": done_before,
        "finished": dict(finished),
        "running": entries,
        "not_success": dict(not_success),
    }


class Ticker:
    """Called on every read: writes the progress file every `file_seconds` and logs a line
    every `log_seconds`, each made by its callable only when due."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        write: Callable[[Snapshot], None],
        log: Callable[[Snapshot], None],
        file_seconds: float = 2.0,
        log_seconds: float = 10.0,
    ):
        self._snapshot = snapshot
        self._write = write
        self._log = log
        self._file_seconds = file_seconds
        self._log_seconds = log_seconds
        now = time.monotonic()
        self._next_file = now  # the first read writes the file: the console sees the start
        self._next_log = now + log_seconds

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next_file and now < self._next_log:
            return
        snapshot = self._snapshot()
        if now >= self._next_file:
            self._next_file = now + self._file_seconds
            self._write(snapshot)
        if now >= self._next_log:
            self._next_log = now + self._log_seconds
            self._log(snapshot)


class ReadProgress:
    """How far the read of one file is: a Snapshot written to `path` (when given) every 2 s and
    given to `log` every 10 s, while the stream `watch` returns is read; `remove` ends it."""

    def __init__(self, path: str | os.PathLike[str] | None, log: Callable[[Snapshot], None]):
        self.path = path
        self.log = log
        self.started = time.time()
        self.raw: ByteSource | None = None
        self.stream: DecodedStream | None = None
        self.items: Callable[[], int] = lambda: 0

    def watch(self, raw: ByteSource, items: Callable[[], int]) -> DecodedStream:
        """The decoded stream of `raw`, watched; `items`: how many items are read so far."""
        self.raw, self.items = raw, items
        self.stream = DecodedStream(raw, on_read=Ticker(self.snapshot, self.write, self.log).tick)
        return self.stream

    def snapshot(self) -> Snapshot:
        return Snapshot(
            network_id="",
            started=self.started,
            updated=time.time(),
            bytes_read=self.raw.bytes_read if self.raw is not None else 0,
            bytes_total=self.raw.expected_length if self.raw is not None else None,
            bytes_decoded=self.stream.bytes_decoded if self.stream is not None else 0,
            items_seen=self.items(),
        )

    def write(self, snapshot: Snapshot) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):  # a courtesy: what is read needs the room more
                write_snapshot(self.path, snapshot)

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                Path(self.path).unlink(missing_ok=True)
