"""The `csv` source: a plans CSV with a `file_url` column; its other columns are plan metadata."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from mrfbatch.errors import SourceError
from mrfbatch.redact import redact_url
from mrfbatch.sources.locations import (
    MAX_LISTED,
    location_problem,
    raise_problems,
    resolve_location,
)
from mrfbatch.tasks import Task, TaskCollector, keyed
from mrfbatch.textfile import PathLike, read_text, shorten

URL_COLUMN = "file_url"

_OTHER_DELIMITERS = {"\t": "tab", ";": "semicolon", "|": "pipe"}
# A header that names the URLs' column otherwise (`url`, `File URL`, `location`, `mrf_link`)
_URL_LIKE = re.compile(r"url|link|location|href", re.IGNORECASE)


def parse_csv(path: PathLike) -> list[Task]:
    """One task per distinct `file_url` of a plans CSV; the other columns are plan metadata.

    The header must have a `file_url` column (names are stripped of whitespace; byte order
    marks and CRLF line ends are fine). Quoting is strict: a quote never closed is an error
    naming the line it opens on, not the rest of the file in one cell. Blank rows are skipped;
    every other non-empty cell of a row becomes a string field of that row's plan. Rows naming
    the same file share one task. A relative path in `file_url` is relative to the folder of
    `path` (see :func:`resolve_location`).
    """
    name = str(path)
    text = read_text(path, "source file")
    # strict: a quote opened and never closed is an error, not the rest of the file in a cell
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    collector = TaskCollector()
    problems: list[str] = []
    header: list[str] | None = None
    url_at = 0
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                url_at = _url_column(header, name, start)
                continue
            url, plan, problem = _csv_row(row, header, url_at, start, name)
            if problem:
                problems.append(problem)
            else:
                collector.add(url, keyed([plan] if plan else []))
    except csv.Error as exc:
        hint = ""
        if str(exc) == "unexpected end of data":
            hint = f" (a quote opened in the row that starts on line {line} is never closed)"
        raise SourceError(f"{name} is not a readable CSV at line {line}: {exc}{hint}") from exc
    if header is None:
        raise SourceError(f"{name} is empty; expected a CSV header with a {URL_COLUMN} column")
    raise_problems(problems, f"{name} has {{n}} unusable rows", f"{name} has an unusable row")
    if not collector:
        raise SourceError(f"{name} has a header but no rows; expected one row per file and plan")
    return collector.tasks()


def _url_column(header: list[str], name: str, line: int) -> int:
    if URL_COLUMN not in header:
        found = ", ".join(repr(h) for h in header[:MAX_LISTED])
        more = f" and {len(header) - MAX_LISTED} more" if len(header) > MAX_LISTED else ""
        near = next((h for h in header if _URL_LIKE.search(h)), None)
        hint = (
            f"; rename {near!r} to {URL_COLUMN}"
            if near
            else f"; name the column of the files' URLs {URL_COLUMN}"
        )
        for mark, name_of_mark in _OTHER_DELIMITERS.items():
            if len(header) == 1 and mark in header[0]:
                hint = (
                    f" (the header holds {name_of_mark}s: the file looks {name_of_mark}-"
                    "separated, expected commas)"
                )
                break
        raise SourceError(
            f"{name} has no {URL_COLUMN!r} column in its header (line {line}); "
            f"found columns: {found}{more}{hint}"
        )
    for column in header:
        if column and header.count(column) > 1:
            raise SourceError(
                f"{name}: column {column!r} appears twice in the header (line {line})"
            )
    return header.index(URL_COLUMN)


def _csv_row(
    row: list[str], header: list[str], url_at: int, line: int, source: str
) -> tuple[str, dict[str, Any], str | None]:
    """(url, plan, problem) of one data row of the CSV `source`."""
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        return "", {}, f"line {line} has {len(row)} fields, the header {len(header)}"
    url = row[url_at].strip() if url_at < len(row) else ""
    if not url:
        return "", {}, f"line {line} has an empty {URL_COLUMN}"
    invalid = location_problem(url, source)
    if invalid:
        return "", {}, f"line {line}: {shorten(redact_url(url))} {invalid}"
    plan: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=False):
        value = cell.strip()
        if column == URL_COLUMN or not value:
            continue
        if not column:
            return "", {}, f"line {line} has a value ({shorten(value)}) in a column with no name"
        plan[column] = value
    return resolve_location(url, source), plan, None
