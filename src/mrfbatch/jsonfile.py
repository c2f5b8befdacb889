"""The run's JSON files (status, manifest, progress): read forgivingly, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is none or it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: str | os.PathLike[str], data: Any, indent: int | None = 2) -> None:
    """Replace `path` with `data` as JSON: a reader never sees half of it, and a failed write
    leaves no temporary file (`.{name}.tmp-{pid}` beside it)."""
    target = Path(path)
    hidden = target.name if target.name.startswith(".") else f".{target.name}"
    tmp = target.with_name(f"{hidden}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            if indent is None:  # json's C encoder: one string
                f.write(json.dumps(data, ensure_ascii=False))
            else:  # the encoder for indented JSON is Python's: written as it goes, not joined
                json.dump(data, f, indent=indent, ensure_ascii=False)  # (a manifest: 100s of MB)
            f.write("\n")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
