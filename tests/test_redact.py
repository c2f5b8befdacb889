"""URLs and messages safe to print (mrfbatch.redact); in logs and statuses: test_secrets.py."""

from __future__ import annotations

import pytest

from mrfbatch.redact import redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://h.example/f.json.gz?X-Amz-Signature=abc&X-Amz-Credential=k",
            "https://h.example/f.json.gz",
        ),
        ("https://user:pw@h.example:8443/f.json#frag", "https://h.example:8443/f.json"),
        ("/local/path.json?x=1", "/local/path.json"),
    ],
)
def test_redact_url_drops_secrets(url: str, expected: str) -> None:
    assert redact_url(url) == expected
