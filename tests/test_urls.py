"""mrfbatch.urls.resolve_reference: where a location listed in a fetched file points.

The expected values are RFC 3986's own examples of resolving references (section 5.4.1,
base `http://a/b/c/d;p?q`), except where the function keeps a location as written.
"""

from __future__ import annotations

import pytest

from mrfbatch.urls import resolve_reference

RFC_BASE = "http://a/b/c/d;p?q"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("g?y", "http://a/b/c/g?y"),
        ("g#s", "http://a/b/c/g#s"),
        ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        (".", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../../g", "http://a/g"),
        ("g:h", "g:h"),
    ],
)
def test_a_reference_resolves_as_rfc_3986_says(location: str, expected: str) -> None:
    assert resolve_reference(location, RFC_BASE) == expected


@pytest.mark.parametrize("location", ["", "?y", "#s"])
def test_a_reference_to_the_file_itself_is_kept_as_written(location: str) -> None:
    """RFC 3986 resolves these to the base itself (with its query): a file listing itself."""
    assert resolve_reference(location, RFC_BASE) == location


def test_the_base_query_string_is_not_carried_over() -> None:
    base = "https://payer.example/toc/index.json?Signature=s3cr3t&Expires=1"
    assert resolve_reference("in-network/a.json.gz", base) == (
        "https://payer.example/toc/in-network/a.json.gz"
    )


def test_a_url_is_kept_whatever_the_base() -> None:
    url = "https://cdn.example/a.json.gz?sig=1"
    assert resolve_reference(url, "https://payer.example/index.json") == url


@pytest.mark.parametrize(
    "base", ["payer/index.json", "/data/payer/index.json", "file:///data/payer/index.json", ""]
)
def test_a_location_in_a_local_file_is_kept_as_written(base: str) -> None:
    """Relative to a local file's folder, which its source resolves (resolve_location)."""
    assert resolve_reference("files/a.json.gz", base) == "files/a.json.gz"


def test_a_malformed_location_is_kept_as_written_for_its_check() -> None:
    assert resolve_reference("//[::1/a.json", RFC_BASE) == "//[::1/a.json"
