"""Network ids (the per-file output folder name) and URLs safe to print."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIXES = (".gz", ".gzip", ".zip", ".json")


def redact_url(url: str) -> str:
    """Return `url` without its query string and fragment, which may carry signatures.

    >>> redact_url("https://cdn.example/a/b.json.gz?Signature=abc&Key-Pair-Id=k")
    'https://cdn.example/a/b.json.gz'
    """
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return url.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.netloc.rsplit("@", 1)[-1]  # drop user:password@
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def derive_network_id(url: str) -> str:
    """Derive a network id from the file name in `url`'s path.

    The query string is ignored (signed URLs), `.json`/`.gz`/`.zip` suffixes are removed and
    the rest is reduced to `[A-Za-z0-9._-]`.

    >>> derive_network_id("https://x.example/2024/ABC_in-network.json.gz?sig=1")
    'ABC_in-network'
    """
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    name = PurePosixPath(unquote(path).replace("\\", "/")).name
    lowered = name.lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SUFFIXES:
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
                stripped = True
    safe = _UNSAFE.sub("_", name).strip("._-")
    return safe or "network"
