"""Network ids (the per-file output folder name) and URLs safe to print."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIXES = (".gz", ".gzip", ".zip", ".json")
_MAX_BASE = 200  # a folder name may hold 255 bytes; leave room for the suffixes below
_HEX_STEP = 8


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


def assign_network_ids(urls: Iterable[str]) -> dict[str, str]:
    """Map every URL in `urls` to a network id that no other file in `urls` shares.

    URLs that differ only in their query string (signed URLs) are the same file and get the same
    id. An id is :func:`derive_network_id`'s (cut to 200 characters), unless several files give
    the same one, ignoring case (output folders may live on case-insensitive filesystems): then
    every one of them gets ``-`` and the first 8 hex digits of the SHA-256 of its URL without
    query string (more digits in the rare case that this meets another file's name). The ids
    depend on the set of URLs only, not on their order.

    >>> ids = assign_network_ids(["https://a.example/x.json?sig=1", "https://b.example/X.json"])
    >>> ids["https://a.example/x.json?sig=1"], ids["https://b.example/X.json"]
    ('x-fc29304c', 'X-8ecc0c07')
    """
    keys: dict[str, str] = {}
    for url in urls:
        if url not in keys:
            keys[url] = _file_key(url)
    files = sorted(set(keys.values()))
    digests = {f: hashlib.sha256(f.encode("utf-8", "surrogatepass")).hexdigest() for f in files}
    bases = {f: derive_network_id(f)[:_MAX_BASE].rstrip("._-") or "network" for f in files}
    hex_digits = dict.fromkeys(files, 0)
    while True:
        ids = {
            f: bases[f] + (f"-{digests[f][: hex_digits[f]]}" if hex_digits[f] else "")
            for f in files
        }
        holders: dict[str, list[str]] = {}
        for f, network_id in ids.items():
            holders.setdefault(network_id.lower(), []).append(f)
        clashing = [f for group in holders.values() if len(group) > 1 for f in group]
        if not clashing:
            return {url: ids[key] for url, key in keys.items()}
        # Only a suffixed id equal to another file's name can still clash after one round;
        # longer suffixes end it, since two files' full digests differ.
        for f in clashing:
            hex_digits[f] = min(hex_digits[f] + _HEX_STEP, len(digests[f]))


def _file_key(url: str) -> str:
    """`url` without its query string and fragment: what identifies the file."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path: "?" and "#" are file name
        return url
    return urlunsplit(parts._replace(query="", fragment=""))
