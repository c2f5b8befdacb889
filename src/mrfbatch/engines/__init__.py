"""Parsing engines: each walks an in-network file and hands what it finds to a handler.

An engine knows JSON, not the schema: it hands over top-level keys and values, the entries of
`provider_references` as JSON text, and each `in_network` item, as JSON text (the fast engine)
or decoded (the reference engine). What a row is lives in `mrfbatch.rates` and
`mrfbatch.provider_rows`; which items are extracted is the handler's decision (`wants`).
"""

from __future__ import annotations

from mrfbatch.engines.protocol import (
    DEFAULT_MAX_VALUE_MB,
    MB,
    VALIDATIONS,
    DocumentHandler,
    Element,
    Engine,
    check_value_size,
    invalid_json,
    megabytes,
    truncated_json,
)
from mrfbatch.errors import UsageError

__all__ = [
    "DEFAULT_MAX_VALUE_MB",
    "ENGINES",
    "VALIDATIONS",
    "MB",
    "DocumentHandler",
    "Element",
    "Engine",
    "check_value_size",
    "get_engine",
    "invalid_json",
    "megabytes",
    "truncated_json",
]

ENGINES = ("fast", "reference")


def get_engine(
    name: str,
    threads: int = 1,
    max_value_mb: int = DEFAULT_MAX_VALUE_MB,
    validate: str = "structural",
) -> Engine:
    """The engine called `name`: "fast" (the C scanner) or "reference" (ijson).

    `threads=2` lets the fast engine inflate in a second thread; the reference ignores it.
    `max_value_mb`: the largest item or provider reference either engine accepts (MB of 2**20
    bytes), see `check_value_size`. `validate`: one of VALIDATIONS, for the fast engine.
    """
    if name == "fast":
        from mrfbatch.engines.fast import FastEngine

        return FastEngine(threads=threads, max_value=max_value_mb * MB, validate=validate)
    if name == "reference":
        from mrfbatch.engines.reference import ReferenceEngine

        return ReferenceEngine(max_value=max_value_mb * MB)
    raise UsageError(f"unknown engine {name!r}; expected one of: {', '.join(ENGINES)}")
