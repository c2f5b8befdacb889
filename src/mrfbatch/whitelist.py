"""Billing-code whitelists: which in_network items to extract."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from mrfbatch.errors import WhitelistError


def normalize_code(code: object) -> str:
    """The form codes are compared in: text, trimmed, upper-cased."""
    return str(code).strip().upper()


def load_whitelist(source: str | os.PathLike[str] | Iterable[str]) -> frozenset[str]:
    """Read billing codes from a file, or normalize an iterable of codes.

    A file holds one code per line (blank lines and `#` comments ignored), or is a CSV whose
    header has a `billing_code` column.
    """
    if not isinstance(source, str | os.PathLike):
        return frozenset(c for c in (normalize_code(x) for x in source) if c)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WhitelistError(f"whitelist file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WhitelistError(f"whitelist file {path} cannot be read: {exc}") from exc
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    if "billing_code" in [h.strip().lower() for h in next(csv.reader([first]), [])]:
        return _codes_from_csv(path, text)
    codes = {normalize_code(ln.split("#", 1)[0]) for ln in lines}
    codes.discard("")
    if not codes:
        raise WhitelistError(f"whitelist file {path} lists no billing codes")
    return frozenset(codes)


def _codes_from_csv(path: Path, text: str) -> frozenset[str]:
    rows = csv.DictReader(io.StringIO(text))
    assert rows.fieldnames is not None
    column = next(f for f in rows.fieldnames if f.strip().lower() == "billing_code")
    codes = {normalize_code(row[column] or "") for row in rows}
    codes.discard("")
    if not codes:
        raise WhitelistError(f"whitelist file {path} has a billing_code column with no codes")
    return frozenset(codes)
