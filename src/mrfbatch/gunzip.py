"""gzip decoded by python-isal's gzip reader: C that inflates with ISA-L, without the GIL.

`Gunzip` reads every member of a stream in turn (zeros may pad a member, as gzip allows) and
checks each member's CRC-32 and length; its errors say where in the compressed bytes they were
found. `mrfbatch.compression` detects gzip and hands it the stream.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from gzip import BadGzipFile
from typing import BinaryIO, Protocol, cast

from isal import igzip_lib, isal_zlib

from mrfbatch.errors import CompressionError
from mrfbatch.sniff import GZIP_MAGIC

# The class of ISA-L's errors (python-isal's type stub declares an instance of Exception).
ISAL_ERROR = cast(type[Exception], igzip_lib.IsalError)
# A gzip member takes at least a 10-byte header, 2 bytes of deflate, an 8-byte trailer.
_SMALLEST_MEMBER = 20


class Source(Protocol):
    """What is read (mrfbatch.compression's RawReader)."""

    description: str

    def read(self, size: int) -> bytes: ...


class Gunzip:
    """Every gzip member of `raw` in turn, inflated by python-isal's gzip reader: C that runs
    ISA-L with the GIL released and checks each member's CRC-32 and length. Zero bytes may pad
    a member, as gzip allows.

    `inflate_into` fills a caller's buffer in one call, with no Python between its pieces: a
    reader thread then needs the GIL only to take compressed bytes from `raw`, once per `chunk`
    of them, and the bytes are not copied again. (`isal_zlib._GzipReader` is the class behind
    python-isal's `igzip.open`, the same in every release pyproject.toml allows;
    tests/test_compression.py tries each way a gzip stream can be wrong.)
    """

    def __init__(self, raw: Source, head: bytes, chunk: int, out: int):
        self.description = raw.description
        self._input = _Counted(raw, head, chunk)
        self._reader = isal_zlib._GzipReader(cast(BinaryIO, self._input), chunk)
        self._out = out

    def tick(self, on_read: Callable[[], None] | None) -> None:
        """Call `on_read` after each read of compressed bytes from now on: a download's
        progress goes on within one long `inflate_into`."""
        self._input.on_read = on_read

    def inflate_into(self, view: memoryview) -> int:
        """Fill `view` with decoded bytes; how many (fewer only at the end, 0 there)."""
        with self._errors():
            return int(self._reader.readinto(view))

    def pieces(self) -> Iterator[bytes]:
        """The decoded bytes in pieces of at most `out` bytes."""
        while True:
            with self._errors():
                piece = self._reader.read(self._out)
            if not piece:
                return
            yield piece

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """The gzip reader's errors, said as CompressionError with where they were found."""
        try:
            yield
        except EOFError:
            stray = self._stray(0)
            if stray is not None:
                raise self._unexpected(f"at compressed byte {stray}") from None
            raise CompressionError(
                f"gzip stream of {self.description} ends early: truncated after "
                f"{self._input.consumed} compressed bytes; the file is incomplete"
            ) from None
        except (BadGzipFile, ISAL_ERROR) as exc:
            read, last = self._input.consumed, self._input.last
            if str(exc).startswith("Not a gzipped file"):
                stray = self._stray(10)
                where = f"within compressed bytes {read - last} to {read}"
                where = where if stray is None else f"at compressed byte {stray}"
                raise self._unexpected(where) from None
            raise CompressionError(
                f"corrupt gzip data in {self.description}, detected in compressed bytes "
                f"{read - last} to {read}: {exc}"
            ) from exc

    def _unexpected(self, where: str) -> CompressionError:
        # After a member whose CRC-32 and length check out: the file as served holds them, so
        # reading it again fails again (a transfer that breaks ends early instead).
        return CompressionError(
            f"{self.description}: unexpected bytes after gzip member {where}; expected another "
            "gzip member or the end",
            retryable=False,
        )

    def _stray(self, at_least: int) -> int | None:
        """Where bytes that are not a gzip member start, when the reader stopped at them: after
        the trailer of a member that holds every decoded byte (a one-member file's last), and
        zeros. `at_least`: 10 when the reader saw a header's 10 bytes there, else 0: fewer than
        10 end the stream. None when no such place is found (or the bytes start a header)."""
        tail = self._input.tail()
        before = self._input.consumed - len(tail)  # compressed bytes before tail
        size = (self._reader.tell() & 0xFFFFFFFF).to_bytes(4, "little")
        found = tail.rfind(size)
        while before + found >= _SMALLEST_MEMBER - 4:
            start = found + 4
            while start < len(tail) and tail[start] == 0:
                start += 1
            stray = tail[start:]
            header_size = (len(stray) >= 10) == (at_least >= 10)
            if stray and header_size and not GZIP_MAGIC.startswith(stray[:2]):
                return before + start
            found = tail.rfind(size, 0, found + 3)
        return None


class _Counted:
    """`raw` as the gzip reader reads it (it calls `readinto`), `head` first; how many bytes
    it has taken (`consumed`), and how many the last read gave (`last`); `on_read`, when set,
    is called after each read."""

    def __init__(self, raw: Source, head: bytes, chunk: int):
        self._raw = raw
        self.on_read: Callable[[], None] | None = None
        self._recent_bytes = chunk + 64  # the reader holds at most `chunk` uninflated
        self._pending = head
        self.consumed = 0
        self.last = 0
        self._recent: collections.deque[bytes] = collections.deque()  # the last reads...
        self._recent_size = 0  # ...their bytes, as many as they need

    def read(self, size: int) -> bytes:
        data, self._pending = self._pending or self._raw.read(size), b""
        if len(data) > size:
            data, self._pending = data[:size], data[size:]
        self.consumed += len(data)
        self.last = len(data)
        self._recent.append(data)
        self._recent_size += len(data)
        while self._recent_size - len(self._recent[0]) >= self._recent_bytes:
            self._recent_size -= len(self._recent.popleft())
        if self.on_read is not None:
            self.on_read()
        return data

    def tail(self) -> bytes:
        """The last bytes taken: all the reader may hold uninflated, and the trailer before."""
        return b"".join(self._recent)

    def readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
