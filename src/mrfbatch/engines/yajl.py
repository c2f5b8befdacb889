"""ijson's C backend (yajl2_c): loading it, and its errors as messages that name the byte.

Shared by everything that parses with ijson: the reference engine, the table-of-contents
parser (`mrfbatch.toc`) and remote provider-reference files (`mrfbatch.remote`).
"""

from __future__ import annotations

import importlib
from typing import Any

from mrfbatch.engines.protocol import invalid_json, truncated_json
from mrfbatch.errors import BackendError, JsonFormatError


def load_backend() -> Any:
    """ijson's yajl2_c backend, or BackendError saying how to get it."""
    try:
        return importlib.import_module("ijson.backends.yajl2_c")
    except ImportError as exc:
        raise BackendError(
            "ijson's C backend (yajl2_c) is not available, and the pure-Python backend is too "
            "slow for multi-GB files. Reinstall ijson from a binary wheel: "
            "`pip install --force-reinstall --only-binary ijson 'ijson>=3.3'` "
            "(or install a C compiler and the Python headers, then reinstall ijson)."
        ) from exc


# The line yajl puts under its quote of the bytes where it stopped: the caret is under the byte.
_CARET = " " * 21 + "(right here) ------^"


def json_error(exc: Exception, stream: Any) -> JsonFormatError:
    """Turn a yajl error into a message with the decoded byte offset where JSON broke."""
    message = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(message, bytes):  # yajl quotes bytes that are not UTF-8 as they are
        message = message.decode("utf-8", "surrogateescape")
    lines = str(message).split("\n")
    if len(lines) > 2 and lines[1].endswith(_CARET) and not lines[2].strip():
        # yajl's quote of the bytes stopped at a zero byte, and its line end with it
        lines[1:2] = [lines[1][: -len(_CARET)], _CARET]
    summary = lines[0].strip() or "invalid JSON"
    decoded = getattr(stream, "bytes_decoded", 0)
    name = getattr(stream, "description", "the file")
    if "premature EOF" in summary or getattr(stream, "at_end", False):
        # Once the stream is exhausted yajl only reports what the end cut short (e.g. a
        # string ending in a backslash): that is a truncated file, whatever the wording.
        return truncated_json(name, decoded)
    offset = _locate(lines, stream)
    snippet = lines[1].strip() if len(lines) > 1 else ""
    shown = snippet[:60].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    context = f" near {shown!r}" if snippet else ""
    if offset is None:
        start = getattr(stream, "last_read_start", 0)
        context += f" (between decoded bytes {start} and {decoded})"
    return invalid_json(name, offset, summary + context)


def _locate(lines: list[str], stream: Any) -> int | None:
    """Exact offset from yajl's error rendering, when it can be pinned down.

    yajl prints up to 30 bytes either side of the point where it stopped (just after the
    offending byte or token), indented so that its caret line's `^` sits under that point. Near
    the start of the buffer the indent alone gives the position; otherwise the snippet is looked
    up in the buffer (only a unique match is trusted). The result is the last byte yajl read.
    """
    chunk: bytes | None = getattr(stream, "last_read", None)
    start: int | None = getattr(stream, "last_read_start", None)
    if chunk is None or start is None or len(lines) < 3 or "^" not in lines[2]:
        return None
    indent = len(lines[1]) - len(lines[1].lstrip(" "))
    into_snippet = lines[2].index("^") - indent - 1
    snippet = lines[1][indent:].encode("utf-8", "surrogateescape")
    if into_snippet < 0:
        return None
    if chunk.startswith(snippet.replace(b" ", b"")[:1]) and into_snippet < 30 and indent > 10:
        return start + into_snippet
    flat = chunk.replace(b"\n", b" ").replace(b"\r", b" ")
    at = flat.find(snippet)
    if at < 0 or flat.find(snippet, at + 1) >= 0:
        return None
    return start + at + into_snippet
