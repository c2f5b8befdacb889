"""Parsing engines: each walks an in-network file and hands decoded objects to a handler.

An engine knows JSON, not the schema: it decodes top-level scalars, each `provider_references`
entry and each `in_network` item, and calls the handler. What a row is lives in
`mrfbatch.rows`; which items to decode is the handler's decision.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol


class DocumentHandler(Protocol):
    """What an engine calls while it walks one in-network file."""

    def top_level_key(self, key: str) -> bool:
        """A top-level key was met; return False to have its value skipped undecoded."""

    def header(self, key: str, value: Any) -> None:
        """A decoded top-level value other than the two arrays."""

    def provider_reference(self, obj: Any) -> None:
        """One decoded `provider_references` entry."""

    def in_network_item(self, obj: Any) -> None:
        """One decoded `in_network` item."""

    def array_done(self, key: str) -> None:
        """The `provider_references` or `in_network` array has ended."""


class Engine(Protocol):
    name: str

    def scan(self, stream: BinaryIO, handler: DocumentHandler) -> None:
        """Walk the whole stream, raising MrfError subclasses on bad input."""


def get_engine(name: str) -> Engine:
    """The engine called `name` (only "reference" so far)."""
    from mrfbatch.engines.reference import ReferenceEngine
    from mrfbatch.errors import UsageError

    if name == "reference":
        return ReferenceEngine()
    raise UsageError(f"unknown engine {name!r}; expected one of: reference")
