"""JSON text whose numbers keep their exact source text: :class:`RawNumber` and :func:`dumps`.

Example::

    dumps({"negotiated_rate": RawNumber("690.64470")})  # b'{"negotiated_rate":690.64470}'
"""

from __future__ import annotations

import json
from typing import Any

Json = Any  # JSON values built from dict, list, str, int, bool, None and RawNumber


class RawNumber(str):
    """A JSON number kept as its exact source text (``RawNumber("690.64470")``)."""


def dumps(value: Json, *, pretty: bool = False, crlf: bool = False) -> bytes:
    """JSON text of value as UTF-8 bytes; RawNumber values are written verbatim."""
    parts: list[str] = []
    _emit(value, parts, 2 if pretty else None, 0, "\r\n" if crlf else "\n")
    return "".join(parts).encode("utf-8")


def _emit(value: Json, out: list[str], indent: int | None, level: int, nl: str) -> None:
    if isinstance(value, RawNumber):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None or isinstance(value, bool | int | float):
        out.append(json.dumps(value))
    elif isinstance(value, dict | list):
        is_dict = isinstance(value, dict)
        opener, closer = ("{", "}") if is_dict else ("[", "]")
        entries = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        if not entries:
            out.append(opener + closer)
            return
        out.append(opener)
        for i, (key, child) in enumerate(entries):
            if i:
                out.append(",")
            if indent is not None:
                out.append(nl + " " * (indent * (level + 1)))
            if is_dict:
                out.append(json.dumps(str(key), ensure_ascii=False))
                out.append(": " if indent is not None else ":")
            _emit(child, out, indent, level + 1, nl)
        if indent is not None:
            out.append(nl + " " * (indent * level))
        out.append(closer)
    else:
        raise TypeError(f"cannot serialize {type(value).__name__}")
