"""Network ids: each file's output folder name, made from its URL, safe and stable."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote

from mrfbatch.errors import UsageError
from mrfbatch.layout import RUN_FILES
from mrfbatch.redact import split_url

# What a network id is: one folder name of the POSIX portable file name characters, starting
# with a letter or digit (never hidden, never taken for an option, never "." or "..").
NETWORK_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
MAX_ID_LENGTH = 200  # of the ids made here; ids given by hand may be longer, see _MAX_GIVEN

_NETWORK_ID = re.compile(NETWORK_ID_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIXES = (".gz", ".gzip", ".zip", ".json")
_HEX_STEP = 8
# Room for a suffix after the id in a file name made from it (`{id}.log`, and more to
# come); a folder entry holds 255 bytes.
_MAX_GIVEN = 255 - len(".status.json.tmp")
# Device names Windows reserves in every folder, with any extension (`con.v2` too).
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}
)
_SHOWN_CHARS = 80


def network_id_problem(network_id: str) -> str | None:
    """Why `network_id` may not name an output folder (a phrase to follow "it"), or None.

    >>> network_id_problem("2024-01_ppo") is None, network_id_problem("nul.v2")
    (True, 'is a device name Windows reserves (CON, PRN, AUX, NUL, COM0-9, LPT0-9)')
    """
    if not _NETWORK_ID.fullmatch(network_id):
        return "must start with a letter or digit and hold only letters, digits, '.', '_' and '-'"
    if len(network_id) > _MAX_GIVEN:
        return f"is {len(network_id)} characters long; at most {_MAX_GIVEN} fit a file name"
    return _reserved(network_id)


def check_network_id(network_id: str) -> None:
    """UsageError unless `network_id` may name an output folder (see network_id_problem)."""
    problem = network_id_problem(network_id)
    if problem:
        shown = network_id
        if len(shown) > _SHOWN_CHARS:
            shown = shown[: _SHOWN_CHARS - 1] + "…"
        raise UsageError(f"network id {shown!r} is not a safe folder name: it {problem}")


def derive_network_id(url: str) -> str:
    """Derive a network id from the file name in `url`'s path.

    The query string is ignored (signed URLs), `.json`/`.gz`/`.zip` suffixes are removed,
    accents are dropped (`é` becomes `e`) and every run of other characters outside
    `[A-Za-z0-9._-]` becomes `_`; leading and trailing `._-` go. A name that is left empty is
    `network`; a name Windows reserves (`CON`, `nul.v2`) or that a run's own file has
    (`tasks.tsv`) gets `_` after its first part. A name longer than 200 characters is cut,
    and ends with `-` and 8 hex digits of the SHA-256 of the URL's path, so different long
    names stay apart. The result always passes :func:`network_id_problem`.

    >>> derive_network_id("https://x.example/2024/ABC_in-network.json.gz?sig=1")
    'ABC_in-network'
    """
    path = split_url(url).path if "://" in url else url.split("?", 1)[0]
    name = PurePosixPath(unquote(path).replace("\\", "/")).name
    lowered = name.lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SUFFIXES:
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
                stripped = True
    safe = _portable(name) or "network"
    if _reserved(safe):
        stem, dot, rest = safe.partition(".")
        safe = f"{stem}_{dot}{rest}"
    if len(safe) > MAX_ID_LENGTH:
        digest = _sha256(path)[:_HEX_STEP]
        safe = safe[: MAX_ID_LENGTH - 1 - len(digest)].rstrip("._-") + "-" + digest
    return safe


def assign_network_ids(urls: Iterable[str]) -> dict[str, str]:
    """Map every URL in `urls` to a network id that no other file in `urls` shares.

    URLs that differ only in their query string (signed URLs) are the same file and get the same
    id. An id is :func:`derive_network_id`'s, unless several files give the same one, ignoring
    case (output folders may live on case-insensitive filesystems): then every one of them gets
    ``-`` and the first 8 hex digits of the SHA-256 of its URL without query string (more digits
    in the rare case that this meets another file's name; the name is cut to keep the id within
    200 characters). The ids depend on the set of URLs only, not on their order.

    >>> ids = assign_network_ids(["https://a.example/x.json?sig=1", "https://b.example/X.json"])
    >>> ids["https://a.example/x.json?sig=1"], ids["https://b.example/X.json"]
    ('x-fc29304c', 'X-8ecc0c07')
    """
    keys: dict[str, str] = {}
    for url in urls:
        if url not in keys:
            keys[url] = _file_key(url)
    files = sorted(set(keys.values()))
    digests = {f: _sha256(f) for f in files}
    bases = {f: derive_network_id(f) for f in files}
    hex_digits = dict.fromkeys(files, 0)
    while True:
        ids = {f: _with_suffix(bases[f], digests[f][: hex_digits[f]]) for f in files}
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


def _with_suffix(base: str, digits: str) -> str:
    if not digits:
        return base
    return base[: MAX_ID_LENGTH - 1 - len(digits)].rstrip("._-") + "-" + digits


def _portable(name: str) -> str:
    """`name` in `[A-Za-z0-9._-]`: accents dropped, other runs of characters made `_`."""
    if not name.isascii():
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE.sub("_", name).strip("._-")


def _reserved(network_id: str) -> str | None:
    if network_id.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        return "is a device name Windows reserves (CON, PRN, AUX, NUL, COM0-9, LPT0-9)"
    if network_id.lower() in RUN_FILES:
        return "is the name of a file a run keeps in output_dir"
    return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _file_key(url: str) -> str:
    """`url` without its query string and fragment: what identifies the file."""
    parts = split_url(url)
    if parts.scheme is None:  # a plain path: "?" and "#" are file name
        return url
    authority = "" if parts.netloc is None else "//" + parts.netloc
    return f"{parts.scheme}:{authority}{parts.path}"
