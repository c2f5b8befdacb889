"""Byte sources for the compression layer's tests."""

from __future__ import annotations

import io


class Chunked:
    """A raw byte source that hands out at most `step` bytes per read."""

    def __init__(self, data: bytes, step: int = 1 << 20, description: str = "test.bin"):
        self._f = io.BytesIO(data)
        self.step = step
        self.description = description
        self.name = description
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        data = self._f.read(min(size, self.step))
        self.bytes_read += len(data)
        return data
