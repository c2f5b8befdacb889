"""The `urls` source (a text file, one URL or path per line) and the `url` source (one)."""

from __future__ import annotations

import io
import re

from mrfbatch.errors import SourceError
from mrfbatch.redact import redact_url
from mrfbatch.sources.locations import location_problem, raise_problems, resolve_location
from mrfbatch.tasks import Task, TaskCollector
from mrfbatch.textfile import PathLike, read_text, shorten

_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)


def parse_urls(path: PathLike) -> list[Task]:
    """One task per distinct URL of a text file holding one URL (or file path) per line.

    Blank lines and `#` comments (whole lines, or after whitespace at the end of a line) are
    skipped. A relative path is relative to the folder of `path` (see
    :func:`resolve_location`). Every line that is neither an http(s)/file URL nor an existing
    file is reported, all in one error.
    """
    name = str(path)
    text = read_text(path, "source file")
    collector = TaskCollector()
    problems: list[str] = []
    for number, raw in enumerate(io.StringIO(text, newline=None), 1):
        url = _COMMENT.sub("", raw.strip()).strip()
        if not url:
            continue
        invalid = location_problem(url, name)
        if invalid:
            problems.append(f"line {number}: {shorten(redact_url(url))} {invalid}")
        else:
            collector.add(resolve_location(url, name))
    neither = "neither an http(s)/file URL nor an existing file"
    raise_problems(
        problems,
        f"{name} has {{n}} lines that are {neither}",
        f"{name} has a line that is {neither}",
    )
    if not collector:
        raise SourceError(f"{name} lists no URLs (only blank lines and comments)")
    return collector.tasks()


def parse_url(url: str) -> list[Task]:
    """The task of a single http(s)/file URL or existing file path (relative to the working
    directory)."""
    text = url.strip()
    if not text:
        raise SourceError("the URL is empty; expected an http(s)/file URL or an existing file")
    invalid = location_problem(text)
    if invalid:
        raise SourceError(f"{shorten(redact_url(text))} {invalid}")
    collector = TaskCollector()
    collector.add(text)
    return collector.tasks()
