"""Sources of extraction tasks: a plans CSV, a CMS table of contents, a URL list, one URL.

Every source becomes a list of :class:`mrfbatch.tasks.Task`, one per file, sorted by network
id. A plans CSV and a URL list are written by a person: one bad line refuses the whole file,
with every bad line named. An index is a payer's: its unusable entries are skipped and named
(:func:`load_source` returns them), the rest become tasks. URLs that differ only in their
query string (signed URLs) are the same file: one task, with the first URL seen and the plans
of every input that named the file. One module per kind of source: `plans` (csv), `index`,
`urls` (urls and url); `locations` checks what they list.
"""

from __future__ import annotations

from mrfbatch.errors import UsageError
from mrfbatch.sources.index import FILE_TYPES, IN_NETWORK_FILES, parse_index, read_index
from mrfbatch.sources.plans import parse_csv
from mrfbatch.sources.urls import parse_url, parse_urls
from mrfbatch.tasks import SourceTasks, Task
from mrfbatch.transport import TransportSettings

SOURCE_TYPES = ("csv", "index", "urls", "url")

__all__ = [
    "FILE_TYPES",
    "IN_NETWORK_FILES",
    "SOURCE_TYPES",
    "load_source",
    "load_tasks",
    "parse_csv",
    "parse_index",
    "parse_url",
    "parse_urls",
    "read_index",
]


def load_source(
    source: str,
    input: str,
    settings: TransportSettings | None = None,
    file_types: str = IN_NETWORK_FILES,
    progress_path: str | None = None,
) -> SourceTasks:
    """The tasks of `input` read as a `source` (one of SOURCE_TYPES), sorted by network id, and
    the entries it skipped (an index's only).

    `file_types` (one of FILE_TYPES) chooses which files of an index become tasks. The other
    sources list files whose kind is found when each is read, so it does not apply to them.
    `progress_path`: where an index's read says how far it is (see read_index).
    """
    if file_types not in FILE_TYPES:
        raise UsageError(f"file_types is {file_types!r}; expected one of {', '.join(FILE_TYPES)}")
    if source == "csv":
        return SourceTasks(parse_csv(input))
    if source == "index":
        return read_index(input, settings, file_types, progress_path)
    if source == "urls":
        return SourceTasks(parse_urls(input))
    if source == "url":
        return SourceTasks(parse_url(input))
    raise UsageError(f"unknown source type {source!r}; expected one of {', '.join(SOURCE_TYPES)}")


def load_tasks(
    source: str,
    input: str,
    settings: TransportSettings | None = None,
    file_types: str = IN_NETWORK_FILES,
) -> list[Task]:
    """The tasks of :func:`load_source`, without the entries it skipped.

    >>> [task.network_id for task in load_tasks("url", "https://cdn.example/2024-01_ppo.json.gz?s=x")]
    ['2024-01_ppo']
    """
    return load_source(source, input, settings, file_types).tasks
