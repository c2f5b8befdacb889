"""Where a source's files are: URLs and paths as listed, checked before any job runs; the
problems of a source listed together in one error."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mrfbatch.errors import SourceError
from mrfbatch.redact import redact_url
from mrfbatch.textfile import PathLike, cut
from mrfbatch.urls import CONTROL, http_url_problem

MAX_LISTED = 20  # problems named in one message; the rest are counted


def resolve_location(location: str, source: PathLike | None) -> str:
    """`location` as listed in the local file `source`: a relative path is joined to the folder
    of `source`; URLs, absolute paths and the locations of a source in the working directory
    are kept as written, as is every location when `source` is None.

    >>> resolve_location("files/a.json", "data/plans.csv")
    'data/files/a.json'
    >>> resolve_location("files/a.json", "plans.csv")
    'files/a.json'
    """
    if source is None or not is_relative_path(location):
        return location
    folder = Path(source).parent
    return location if folder == Path(".") else os.path.join(folder, location)


def is_relative_path(location: str) -> bool:
    """Whether `location` is a relative file path: no URL scheme, not absolute."""
    try:
        scheme = urlsplit(location).scheme
    except ValueError:  # a malformed URL, refused by location_problem
        return False
    # a one-letter scheme is a Windows drive letter: a path
    return len(scheme) <= 1 and not os.path.isabs(location)


def local_source_file(source: str) -> Path | None:
    """The file of a local source (path or file URL), SourceError unless it exists; None for
    an http(s) source."""
    parts = urlsplit(source)
    if parts.scheme.lower() == "file":
        path = Path(url2pathname(parts.path))
    elif not parts.scheme or len(parts.scheme) == 1:
        path = Path(source)
    else:
        return None
    if path.is_dir():
        raise SourceError(f"source {path} is a directory, expected a file")
    if not path.is_file():
        raise SourceError(f"source file {path} does not exist")
    return path


def location_problem(text: str, source: PathLike | None = None) -> str | None:
    """Why `text` is not an http(s)/file URL or an existing file, or None when it is one.

    A relative path is looked for as :func:`resolve_location` makes it.
    """
    if CONTROL.search(text):
        return "contains a tab, newline or control character"
    try:
        parts = urlsplit(text)
    except ValueError:
        return "is not a valid URL: its host part is malformed"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return http_url_problem(text)
    if scheme == "file":
        return None if parts.path else "has no path"
    if scheme and len(scheme) > 1:
        return f"has the unsupported scheme {scheme!r} (expected http, https, file or a path)"
    path = resolve_location(text, source)
    looked = ""
    if path != text:  # its written part redacted and cut as `text` is where it is shown
        shown = resolve_location(cut(redact_url(text)), source)
        looked = f" (looked for {shown}, relative to the folder of {source})"
    try:
        if Path(path).is_file():
            return None
        if Path(path).is_dir():
            return f"is a directory, not a file{looked}"
    except (OSError, ValueError):
        pass
    return f"is neither an http(s)/file URL nor an existing file{looked}"


def raise_problems(problems: list[str], summary: str, one: str | None = None) -> None:
    """One SourceError listing every problem (the first MAX_LISTED of them), after `summary`
    (`{n}`: how many), or `one` when there is one."""
    if not problems:
        return
    listed = "; ".join(problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    said = one if one is not None and len(problems) == 1 else summary.format(n=len(problems))
    raise SourceError(f"{said}: {listed}{more}")
