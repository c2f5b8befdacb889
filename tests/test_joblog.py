"""A job's log file and its lines on the console (mrfbatch.joblog)."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mrfbatch.joblog import INTERRUPTED, LogFile, log_to, quiet_on_ctrl_c, say, stop_logging


class _RecordingRaw(io.RawIOBase):
    """A file descriptor's view of the console: every write that reaches the OS."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_say_lines_reach_the_os_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # Jobs running at once share the console: a line written in two pieces can be split by
    # another job's line. Like Python's own stderr, the stream has no buffer of bytes.
    raw = _RecordingRaw()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # type: ignore[type-var]
    monkeypatch.setattr(sys, "stderr", stream)
    say("[mrfbatch] beta: success")
    assert raw.writes == [b"[mrfbatch] beta: success\n"]


def _log_lines(path: str) -> None:
    handlers = log_to(path, echo=False)
    try:
        for n in range(3):
            logging.getLogger("mrfbatch").warning("line %d of a job's log", n)
    finally:
        stop_logging(handlers)


def test_log_to_a_full_disk_loses_lines_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /dev/full answers every write with ENOSPC, as a full disk does
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    _log_lines("/dev/full")  # neither a line nor closing the file raises
    assert capsys.readouterr().err == ""


def test_log_file_shows_a_bad_format_string(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.Logger("job")  # its own: pytest's capture handlers would raise
    handler = LogFile(tmp_path / "job.log")
    logger.addHandler(handler)
    logger.warning("%d items", "some")  # a bug, not the disk: shown as Python shows it
    handler.close()
    assert "--- Logging error ---" in capsys.readouterr().err


def test_log_to_writes_every_line(tmp_path: Path) -> None:
    _log_lines(str(tmp_path / "job.log"))
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert [line.split(" WARNING ")[1] for line in lines] == [
        f"line {n} of a job's log" for n in range(3)
    ]


def test_quiet_on_ctrl_c_ends_a_job_on_sigterm_and_puts_the_handler_back() -> None:
    before = signal.getsignal(signal.SIGTERM)

    @quiet_on_ctrl_c
    def job() -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # as `timeout` or SLURM send it
        time.sleep(10)  # interrupted long before
        return 0

    started = time.monotonic()
    assert job() == INTERRUPTED
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGTERM) is before


def test_quiet_on_ctrl_c_ends_a_job_on_ctrl_c_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @quiet_on_ctrl_c
    def job() -> int:
        raise KeyboardInterrupt

    assert job() == INTERRUPTED
    assert capsys.readouterr().err == ""
