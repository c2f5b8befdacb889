"""What an extraction did, and the words for a write that failed (mrfbatch.status)."""

from __future__ import annotations

import errno
import os

import pytest

from mrfbatch.status import room_to_write, write_failure


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "the disk is full ({}) while writing out/t.parquet"),
        (errno.EDQUOT, "the disk quota is used up ({}) while writing out/t.parquet"),
        (errno.EFBIG, "out/t.parquet reached the largest file size allowed ({})"),
        (errno.EACCES, "cannot write out/t.parquet: {}"),
    ],
)
def test_write_failure_names_the_file_and_the_reason(code: int, said: str) -> None:
    # pyarrow's errors carry the errno and a text of their own: the system's words are used
    exc = OSError(code, "Error writing bytes to file")
    assert write_failure(exc, "out/t.parquet") == said.format(os.strerror(code))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_room_to_write_asks_for_space_when_the_disk_is_full(code: int) -> None:
    assert room_to_write(OSError(code, "x"), "out") == ": free space under out, then run again"


@pytest.mark.parametrize("code", [errno.EFBIG, errno.EACCES, None])
def test_room_to_write_says_nothing_for_other_errors(code: int | None) -> None:
    assert room_to_write(OSError(code, "x"), "out") == ""
