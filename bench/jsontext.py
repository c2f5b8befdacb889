"""JSON text for the benchmark generator: exact numbers, CMS-like whitespace, a gzip sink.

Everything here is ASCII, so a string's length is its size in bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

# A JSON number written as its exact text (RawNumber("4207.13570")), the same type the tests'
# generator writes; generate.py takes it from here.
from tests.support.rawjson import RawNumber  # noqa: E402

FLUSH_CHARS = 1 << 20


class Style:
    """Whitespace of one output style: compact, or indented like the CMS examples."""

    def __init__(self, indent: int, crlf: bool):
        self.nl = ("\r\n" if crlf else "\n") if indent else ""
        self.unit = " " * indent
        self.colon = ": " if indent else ":"
        self.comma = ", " if indent else ","  # between the scalars of an inline array

    def pad(self, depth: int) -> str:
        """Line break plus indentation for a value at `depth` ("" when compact)."""
        return self.nl + self.unit * depth if self.nl else ""

    def render(self, value: Any, depth: int) -> str:
        """JSON text of `value` as it appears at `depth`; arrays of scalars stay on one line."""
        if isinstance(value, RawNumber):
            return str(value)
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, bool) or value is None:
            return json.dumps(value)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, dict):
            return "{" + self.members(list(value.items()), depth + 1) + self.pad(depth) + "}"
        if isinstance(value, list):
            if not value:
                return "[]"
            if not any(isinstance(v, dict | list) for v in value):
                return "[" + self.comma.join(self.render(v, depth) for v in value) + "]"
            inner = ("," + self.pad(depth + 1)).join(self.render(v, depth + 1) for v in value)
            return "[" + self.pad(depth + 1) + inner + self.pad(depth) + "]"
        raise TypeError(f"cannot render {type(value).__name__}")

    def members(self, pairs: list[tuple[str, Any]], depth: int) -> str:
        """`"key": value` pairs of an object at `depth`, each on its own line when indented."""
        return self.pad(depth) + ("," + self.pad(depth)).join(
            json.dumps(k) + self.colon + self.render(v, depth) for k, v in pairs
        )


class Sink:
    """Buffers text and writes it, ASCII-encoded, into the gzip stream in ~1 MB blocks."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._parts: list[str] = []
        self._pending = 0
        self.written = 0

    def write(self, text: str, length: int | None = None) -> None:
        self._parts.append(text)
        self._pending += len(text) if length is None else length
        if self._pending >= FLUSH_CHARS:
            self.flush()

    def flush(self) -> None:
        data = "".join(self._parts).encode("ascii")
        self._raw.write(data)
        self.written += len(data)
        self._parts = []
        self._pending = 0


def open_gzip(path: Path) -> IO[bytes]:
    """A gzip writer: ISA-L at level 1 when available (4x faster), else zlib at level 1."""
    try:
        from isal import igzip

        return cast(IO[bytes], igzip.open(path, "wb", compresslevel=1))  # type: ignore[no-untyped-call]
    except ImportError:
        import gzip

        return cast(IO[bytes], gzip.open(path, "wb", compresslevel=1))
