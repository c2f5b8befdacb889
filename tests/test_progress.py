"""A running extraction's progress: its wording, its file, and how often the Ticker makes them.

Expected wording is written by hand from progress.py's docstrings; the Ticker runs on a fake
clock, without sleeping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mrfbatch import progress
from mrfbatch.progress import (
    Snapshot,
    Ticker,
    human_bytes,
    human_seconds,
    read_snapshot,
    write_snapshot,
)

START = 1_700_000_000.0  # seconds since the epoch, as Snapshot keeps them


def snapshot(seconds: float, read: int, total: int | None = None, **fields: Any) -> Snapshot:
    """A snapshot `seconds` after the start, `read` bytes of `total` read."""
    return Snapshot(
        network_id="slow",
        started=START,
        updated=START + seconds,
        bytes_read=read,
        bytes_total=total,
        **fields,
    )


# human_bytes and human_seconds


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (999, "999 B"),
        (1_000, "1.0 kB"),
        (12_345, "12.3 kB"),
        (999_949, "999.9 kB"),
        (999_999, "1.0 MB"),  # rounding reaches the next unit
        (999.5, "1.0 kB"),
        (1_000_000, "1.0 MB"),
        (45_000_000, "45.0 MB"),
        (999_949_999, "999.9 MB"),
        (1_000_000_000, "1.0 GB"),
        (2_345_678_901, "2.3 GB"),
        (1_500_000_000_000, "1,500.0 GB"),  # no TB: thousands are grouped
        (2_100_000.0, "2.1 MB"),  # a rate
        (0.4, "0 B"),
    ],
)
def test_human_bytes_picks_the_unit_at_each_boundary(count: float, expected: str) -> None:
    assert human_bytes(count) == expected


@pytest.mark.parametrize(
    ("count", "like", "expected"),
    [
        (500_000, 120_000_000, "0.5 MB"),
        (45_000_000, 120_000_000, "45.0 MB"),
        (0, 120_000_000, "0.0 MB"),
        (999, 2_000, "1.0 kB"),
        (5_000_000, 900, "5,000,000 B"),
        (120_000_000, 1_000_000_000, "0.1 GB"),
    ],
)
def test_human_bytes_takes_the_unit_of_like(count: int, like: int, expected: str) -> None:
    assert human_bytes(count, like=like) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0.0 s"),
        (0.4, "0.4 s"),
        (9.9, "9.9 s"),
        (10, "10 s"),
        (41, "41 s"),
        (9.96, "10 s"),  # rounding reaches the next form
        (99, "99 s"),
        (99.6, "1 min 40 s"),
        (100, "1 min 40 s"),
        (599, "9 min 59 s"),
        (12 * 60, "12 min"),
        (59 * 60, "59 min"),
        (3599, "1 h 00 min"),
        (3600, "1 h 00 min"),
        (2 * 3600 + 5 * 60, "2 h 05 min"),
        (2 * 3600 + 5 * 60 + 29, "2 h 05 min"),
        (25 * 3600 + 59 * 60, "25 h 59 min"),
    ],
)
def test_human_seconds_picks_the_unit_at_each_boundary(seconds: float, expected: str) -> None:
    assert human_seconds(seconds) == expected


# Snapshot


@pytest.mark.parametrize(
    ("read", "total", "expected"),
    [
        (45_000_000, 120_000_000, 37.5),
        (0, 120_000_000, 0.0),
        (120_000_000, 120_000_000, 100.0),
        (130_000_000, 120_000_000, 100.0),  # a size that was wrong is never past 100 %
        (45_000_000, None, None),
        (45_000_000, 0, None),
    ],
)
def test_snapshot_percent_of_the_total(read: int, total: int | None, expected: float) -> None:
    assert snapshot(10, read, total).percent == expected


def test_snapshot_rate_is_bytes_per_second_since_the_start() -> None:
    assert snapshot(18, 45_000_000).rate == pytest.approx(2_500_000)
    assert snapshot(18, 0).rate == 0


def test_snapshot_rate_at_the_start_is_finite() -> None:
    """No ZeroDivisionError when a snapshot is made in the same instant as the start."""
    assert snapshot(0, 0).rate == 0
    assert math.isfinite(snapshot(0, 100).rate)


@pytest.mark.parametrize(
    ("seconds", "read", "total", "expected"),
    [
        pytest.param(
            18,
            45_000_000,
            120_000_000,
            "45.0 of 120.0 MB (38%), 2.5 MB/s, 30 s left",
            id="with-total",
        ),
        pytest.param(18, 45_000_000, None, "45.0 MB read, 2.5 MB/s", id="without-total"),
        pytest.param(
            4,
            500_000,
            120_000_000,
            "0.5 of 120.0 MB (0%), 125.0 kB/s, 16 min left",
            id="small-part",
        ),
        pytest.param(
            100,
            1_000_000_000,
            3_400_000_000,
            "1.0 of 3.4 GB (29%), 10.0 MB/s, 4 min 00 s left",
            id="gigabytes",
        ),
        pytest.param(2, 200, 500, "200 of 500 B (40%), 100 B/s, 3.0 s left", id="bytes"),
        pytest.param(0.5, 45_000_000, 120_000_000, "45.0 of 120.0 MB (38%)", id="first-second"),
        pytest.param(0.5, 45_000_000, None, "45.0 MB read", id="first-second-without-total"),
        pytest.param(0, 0, None, "0 B read", id="at-the-start"),
        pytest.param(
            1, 2_000_000, 120_000_000, "2.0 of 120.0 MB (2%), 2.0 MB/s, 59 s left", id="one-second"
        ),
        pytest.param(48, 120_000_000, 120_000_000, "120.0 of 120.0 MB (100%), 2.5 MB/s", id="done"),
        pytest.param(
            52,
            130_000_000,
            120_000_000,
            "130.0 of 120.0 MB (100%), 2.5 MB/s",
            id="past-the-total",
        ),
        pytest.param(30, 0, 120_000_000, "0.0 of 120.0 MB (0%), 0 B/s", id="nothing-yet"),
    ],
)
def test_snapshot_describe_while_reading(
    seconds: float, read: int, total: int | None, expected: str
) -> None:
    assert snapshot(seconds, read, total).describe() == expected


@pytest.mark.parametrize("total", [120_000_000, None])
def test_snapshot_describe_while_finishing(total: int | None) -> None:
    finishing = snapshot(48, 120_000_000, total, phase="finishing")
    assert finishing.describe() == "120.0 MB read; writing the tables"


# write_snapshot and read_snapshot


def full_snapshot() -> Snapshot:
    return snapshot(
        18.25,
        45_000_000,
        120_000_000,
        bytes_decoded=380_000_000,
        items_seen=1_234,
        items_matched=56,
        rate_rows=7_890,
        phase="finishing",
    )


def test_write_snapshot_round_trips(tmp_path: Path) -> None:
    path = tmp_path / ".progress.json"
    write_snapshot(path, full_snapshot())
    assert read_snapshot(path) == full_snapshot()
    assert read_snapshot(str(path)) == full_snapshot()
    assert sorted(os.listdir(tmp_path)) == [".progress.json"]


def test_write_snapshot_replaces_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / ".progress.json"
    write_snapshot(path, snapshot(1, 100))
    write_snapshot(str(path), full_snapshot())
    assert read_snapshot(path) == full_snapshot()
    assert sorted(os.listdir(tmp_path)) == [".progress.json"]


def test_write_snapshot_writes_json(tmp_path: Path) -> None:
    """The file is read from another process: plain JSON with every field."""
    path = tmp_path / ".progress.json"
    write_snapshot(path, snapshot(2, 100, 500))
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "network_id": "slow",
        "started": START,
        "updated": START + 2,
        "bytes_read": 100,
        "bytes_total": 500,
        "bytes_decoded": 0,
        "items_seen": 0,
        "items_matched": 0,
        "rate_rows": 0,
        "phase": "reading",
    }


def test_read_snapshot_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_snapshot(tmp_path / ".progress.json") is None
    assert read_snapshot(tmp_path) is None  # a folder


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"network_id": "slow", "started": 1', id="cut-short"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf-8"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[1, 2, 3]", id="a-list"),
        pytest.param(b'{"network_id": "slow"}', id="fields-missing"),
        pytest.param(
            b'{"network_id": "slow", "started": 1, "updated": 2, "colour": "red"}',
            id="unknown-field",
        ),
    ],
)
def test_read_snapshot_of_a_corrupt_file_is_none(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / ".progress.json"
    path.write_bytes(content)
    assert read_snapshot(path) is None


def test_write_snapshot_onto_a_folder_fails_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / ".progress.json").mkdir()
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        write_snapshot(tmp_path / ".progress.json", full_snapshot())
    assert sorted(os.listdir(tmp_path)) == [".progress.json"]
    assert (tmp_path / ".progress.json").is_dir()


def test_write_snapshot_that_fails_keeps_the_previous_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".progress.json"
    write_snapshot(path, snapshot(1, 100))

    real_open = Path.open

    class FillsUp:
        """A file written in part, then the disk is full."""

        def __init__(self, path: Path, *args: Any, **kwargs: Any) -> None:
            self.file = real_open(path, *args, **kwargs)

        def __enter__(self) -> FillsUp:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, text: str) -> int:
            self.file.write(text[:10])
            self.file.flush()
            raise OSError(28, "No space left on device")

    def opened(path: Path, *args: Any, **kwargs: Any) -> FillsUp:
        return FillsUp(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", opened)
    with pytest.raises(OSError, match="No space left on device"):
        write_snapshot(path, full_snapshot())
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [".progress.json"]
    assert read_snapshot(path) == snapshot(1, 100)


# Ticker


class Clock:
    """A fake time.monotonic, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The Ticker's three callables, recording when each was called."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.made: list[float] = []
        self.written: list[float] = []
        self.logged: list[float] = []
        self.snapshots: list[Snapshot] = []

    def snapshot(self) -> Snapshot:
        self.made.append(self.clock.now)
        made = snapshot(self.clock.now, len(self.made))
        self.snapshots.append(made)
        return made

    def write(self, made: Snapshot) -> None:
        assert made is self.snapshots[-1]
        self.written.append(self.clock.now)

    def log(self, made: Snapshot) -> None:
        assert made is self.snapshots[-1]
        self.logged.append(self.clock.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(1_000.0)
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=fake))
    return fake


def ticker(clock: Clock, **periods: float) -> tuple[Ticker, Recorder]:
    recorder = Recorder(clock)
    return Ticker(recorder.snapshot, recorder.write, recorder.log, **periods), recorder


def test_ticker_writes_the_file_at_the_first_tick(clock: Clock) -> None:
    tick, seen = ticker(clock)
    assert seen.made == []  # nothing before the first read
    tick.tick()
    assert (seen.made, seen.written, seen.logged) == ([1_000.0], [1_000.0], [])


def test_ticker_writes_the_file_every_file_seconds(clock: Clock) -> None:
    tick, seen = ticker(clock, file_seconds=2.0, log_seconds=100.0)
    for now in (1_000.0, 1_000.5, 1_001.9, 1_002.0, 1_003.0, 1_004.5, 1_006.0, 1_006.4, 1_006.5):
        clock.now = now
        tick.tick()
    # Each write is due file_seconds after the previous one, not on a fixed grid.
    assert seen.written == [1_000.0, 1_002.0, 1_004.5, 1_006.5]
    assert seen.made == seen.written
    assert seen.logged == []


def test_ticker_logs_every_log_seconds(clock: Clock) -> None:
    tick, seen = ticker(clock, file_seconds=100.0, log_seconds=10.0)
    for now in (1_000.0, 1_009.9, 1_010.0, 1_015.0, 1_019.9, 1_021.0, 1_030.9, 1_031.0):
        clock.now = now
        tick.tick()
    assert seen.logged == [1_010.0, 1_021.0, 1_031.0]  # the first log line after log_seconds
    assert seen.written == [1_000.0]
    assert seen.made == [1_000.0, 1_010.0, 1_021.0, 1_031.0]


def test_ticker_makes_one_snapshot_for_a_write_and_a_log_due_together(clock: Clock) -> None:
    tick, seen = ticker(clock, file_seconds=2.0, log_seconds=10.0)
    for now in (1_000.0, 1_010.0):
        clock.now = now
        tick.tick()
    assert seen.made == [1_000.0, 1_010.0]
    assert seen.written == [1_000.0, 1_010.0]
    assert seen.logged == [1_010.0]
    assert len(seen.snapshots) == 2  # write and log were given the same one (Recorder checks)


def test_ticker_makes_no_snapshot_when_nothing_is_due(clock: Clock) -> None:
    tick, seen = ticker(clock, file_seconds=2.0, log_seconds=10.0)
    tick.tick()
    for _ in range(1_000):
        clock.now += 0.001  # a second of reads, 1 ms apart
        tick.tick()
    assert seen.made == [1_000.0]
    assert seen.written == [1_000.0]
    assert seen.logged == []


def test_ticker_uses_the_default_periods(clock: Clock) -> None:
    tick, seen = ticker(clock)
    for now in range(1_000, 1_021):
        clock.now = float(now)
        tick.tick()
    assert seen.written == [float(now) for now in range(1_000, 1_021, 2)]
    assert seen.logged == [1_010.0, 1_020.0]
