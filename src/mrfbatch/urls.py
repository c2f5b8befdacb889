"""What a URL or other text given by a person would trip on, said before anything is requested
or written: http.client sends ASCII only, and no spaces or control characters; a tab or a newline
would also break the tasks table. And where a URL listed in a file fetched from a server points.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a tab, a newline or another control character
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def http_url_problem(url: str) -> str | None:
    """What a GET of this http(s) URL would trip on, worded to follow the URL, or None.

    http.client raises ValueError or UnicodeError for these (it sends ASCII, and no spaces or
    control characters), which no retry cures. Sources check their URLs with it too.
    """
    if CONTROL.search(url):
        return "contains a tab, newline or control character"
    try:
        parts = urlsplit(url)
        if not parts.hostname:
            return "has no host name"
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        # Not the exception's own words: some repeat the host part, user name included.
        if "Port" in str(exc):
            return "is not a valid URL: its port is not a number from 0 to 65535"
        return "is not a valid URL: its host part is malformed"
    if " " in url:
        return "contains a space (encode it as %20)"
    odd = _NON_ASCII.search(url.partition(parts.netloc)[2])
    if odd:
        char = odd.group()
        return (
            f"contains the non-ASCII character {char!r} (U+{ord(char):04X}) after its host; "
            f"percent-encode it as {quote(char, safe='', errors='surrogatepass')}"
        )
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return "has a host name that is not a valid (internationalized) domain name"
    return None


def resolve_reference(location: str, base: str) -> str:
    """`location` as listed in the file read from `base`: when `base` is an http(s) URL, a
    location without a scheme (`files/a.json.gz`, `/mrf/a.json.gz`, `//cdn.example/a.json.gz`)
    is a reference relative to it, resolved as RFC 3986 says (a browser does the same); the
    base's query string (a signature) is not carried over. Locations with a scheme, those with
    neither host nor path (empty, or a query or fragment alone: the file itself), and every
    location of a file read from a path or a file URL are kept as written.

    >>> resolve_reference("files/a.json.gz", "https://payer.example/toc/index.json?sig=x")
    'https://payer.example/toc/files/a.json.gz'
    >>> resolve_reference("/mrf/a.json.gz", "https://payer.example/toc/index.json")
    'https://payer.example/mrf/a.json.gz'
    >>> resolve_reference("files/a.json.gz", "payer/index.json")
    'files/a.json.gz'
    """
    try:
        if urlsplit(base).scheme.lower() not in ("http", "https"):
            return location
        parts = urlsplit(location)
    except ValueError:  # a malformed URL: refused, as written, where it is checked
        return location
    if parts.scheme or not (parts.netloc or parts.path):
        return location
    return urljoin(base, location)
