"""Shared fixtures: a local HTTP file server (tests/httpserver.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from httpserver import FileServer  # noqa: E402


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    """A started FileServer on 127.0.0.1 with a random port, closed after the test."""
    server = FileServer().start()
    try:
        yield server
    finally:
        server.close()
