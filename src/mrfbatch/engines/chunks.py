"""The fast engine's supply of decoded bytes: chunks read in the scanning thread, or
prefetched by a reader thread into buffers of its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 8 << 20
# With a reader thread, each chunk comes behind this many spare bytes, where the scanning
# thread copies what it keeps of the last one (when it fits; else the chunk is appended).
HEAD = 1 << 20


def copy_in(buf: bytearray, at: int, piece: bytes) -> int:
    """Write piece at buf[at:] (over stale bytes, or appended past the end); where it ends.

    Through a memoryview: a bytearray's own slice assignment first copies a `bytes` value
    into a temporary bytearray, so every byte would be copied twice.
    """
    end = at + len(piece)
    if end <= len(buf):
        with memoryview(buf) as view:
            view[at:end] = piece  # same length: a copy, no reallocation
    else:
        del buf[at:]
        buf += piece
    return end


class Chunks:
    """Decoded bytes in chunks, read in this thread or prefetched by a reader thread.

    Read in this thread, a chunk comes as the decompressor's pieces (`next`), or straight into
    the scanner's buffer (`read_into`, when the stream is `direct`). A reader thread
    (`threaded`) reads each chunk into a buffer of its own instead, behind `head` spare bytes
    (`next_buffer`): the scanning thread then only copies what it keeps of the last chunk in
    front of it. Inflating is then done while the scanning thread scans, not by it.

    The scanning thread checks the UTF-8 of an inflated chunk (engines/buffer.py), in C without
    the GIL. In the reader thread, that check made the run slower: inflating sets the pace,
    the scanning thread waits for chunks meanwhile (by hand on the bench file A with
    threads=2, mean of 8 alternating runs: 0.692 s in the scanning thread, 0.716 s in the
    reader's).
    """

    def __init__(self, stream: BinaryIO, size: int, threaded: bool):
        self._stream = stream
        self.size = size
        self.threaded = threaded
        # The stream decodes into a buffer it is given (DecodedStream; gzip inflates straight
        # into it): no piece of its own to copy.
        self.direct = hasattr(stream, "decode_into")
        self.head = HEAD  # spare bytes in front of each chunk a reader thread fills
        self._queue: queue.Queue[tuple[bytearray, bool] | None | BaseException] | None = None
        self._free: list[bytearray] = []  # buffers handed back, for the reader to fill again
        self._stop = threading.Event()
        if threaded:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(
                target=self._prefetch, name="mrfbatch-reader", daemon=True
            )
            self._thread.start()

    def next(self) -> Iterator[bytes]:
        """The pieces of the next chunk (about `size` bytes; nothing at the end of the stream).

        The decompressor's pieces are handed out as they are, so they are copied once, into the
        scanner's buffer: joined first, each chunk would be a fresh allocation of `size` bytes
        whose pages the kernel must map and clear.
        """
        return self._pieces()

    def next_buffer(self) -> tuple[bytearray, bool] | None:
        """The reader thread's next chunk, at buffer[head:], and whether it is known to be
        whole, valid UTF-8 (its pieces all ASCII); None at the end of the stream."""
        assert self._queue is not None
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def recycle(self, buffer: bytearray) -> None:
        """A buffer next_buffer gave that is no longer used (one grown past head + size is let
        go: it would hold its memory)."""
        if self.head <= len(buffer) <= self.head + self.size and len(self._free) < 4:
            self._free.append(buffer)

    def _prefetch(self) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                item: tuple[bytearray, bool] | None | BaseException = self._fill()
            except BaseException as exc:  # handed to the scanning thread, which raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, tuple):
                return

    def _fill(self) -> tuple[bytearray, bool] | None:
        try:
            buffer = self._free.pop()
        except IndexError:
            buffer = bytearray(self.head + self.size)
        if self.direct:  # decoded straight into the buffer (gzip: in C, without the GIL)
            filled, valid = self.read_into(buffer, self.head), False  # checked when scanned
        else:
            filled, valid = self.head, True
            for piece in self._pieces():
                filled = copy_in(buffer, filled, piece)
                valid = valid and piece.isascii()
        if filled == self.head:
            return None
        del buffer[filled:]
        return buffer, valid

    def read_into(self, buffer: bytearray, at: int) -> int:
        """Read up to `size` bytes into buffer[at:] (`direct` streams); where they end.

        The bytes past the end are stale, for the caller to cut.
        """
        end = at + self.size
        if len(buffer) < end:
            buffer.extend(bytes(end - len(buffer)))
        filled, decode_into = at, self._stream.decode_into  # type: ignore[attr-defined]
        with memoryview(buffer) as view:
            while filled < end:
                with view[filled:end] as free:
                    n = decode_into(free)
                if not n:
                    break
                filled += n
        return filled

    def _pieces(self) -> Iterator[bytes]:
        """About `size` bytes (fewer only at the end): decompressors hand out smaller pieces,
        and every chunk edge costs a re-validation of the value that straddles it."""
        total = 0
        while total < self.size:
            part = self._stream.read(self.size - total)
            if not part:
                return
            yield part
            total += len(part)

    def close(self) -> None:
        self._stop.set()
        if self._queue is not None:
            self._thread.join(timeout=5)
