"""A job's log file and its lines on the console (mrfbatch.joblog)."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from mrfbatch.joblog import say


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
