"""Sources of extraction tasks: a plans CSV, a CMS table of contents, a URL list, one URL.

Every source becomes a list of :class:`mrfbatch.tasks.Task`, one per in-network file, sorted
by network id. URLs that differ only in their query string (signed URLs) are the same file:
one task, with the first URL seen and the plans of every input that named the file. One
module per kind of source: `plans` (csv), `index`, `urls` (urls and url); `locations` checks
what they list.
"""

from __future__ import annotations

from mrfbatch.errors import UsageError
from mrfbatch.sources.index import parse_index
from mrfbatch.sources.plans import parse_csv
from mrfbatch.sources.urls import parse_url, parse_urls
from mrfbatch.tasks import Task
from mrfbatch.transport import TransportSettings

SOURCE_TYPES = ("csv", "index", "urls", "url")

__all__ = ["SOURCE_TYPES", "load_tasks", "parse_csv", "parse_index", "parse_url", "parse_urls"]


def load_tasks(source: str, input: str, settings: TransportSettings | None = None) -> list[Task]:
    """The tasks of `input` read as a `source` (one of SOURCE_TYPES), sorted by network id.

    >>> [task.network_id for task in load_tasks("url", "https://cdn.example/2024-01_ppo.json.gz?s=x")]
    ['2024-01_ppo']
    """
    if source == "csv":
        return parse_csv(input)
    if source == "index":
        return parse_index(input, settings)
    if source == "urls":
        return parse_urls(input)
    if source == "url":
        return parse_url(input)
    raise UsageError(f"unknown source type {source!r}; expected one of {', '.join(SOURCE_TYPES)}")
