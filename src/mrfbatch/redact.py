"""URLs and messages safe to print: signed URLs keep their secrets (query string, fragment,
`user:password@`) out of statuses, logs, the manifest and the console."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote

# RFC 3986, appendix B: splits any string, where urllib.parse.urlsplit may raise.
_URI = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://[^\s'\"<>`]+")
_QUERY_IN_TEXT = re.compile(r"\?[^\s'\"<>`?]*=[^\s'\"<>`]*")  # `?name=value...` of a bare path
_REDACTED = "[redacted]"
# Shorter pieces are not searched for in messages: they would match ordinary words, and keep
# nothing secret. Parameter values and passwords alone must be longer than whole pieces.
_MIN_SECRET = 4
_MIN_VALUE = 8


class UrlParts(NamedTuple):
    """A URL split as RFC 3986 does."""

    scheme: str | None  # None for a plain path (a one-letter "scheme" is a Windows drive)
    netloc: str | None  # None when there is no "//"
    path: str
    query: str | None
    fragment: str | None


def split_url(url: str) -> UrlParts:
    """The RFC 3986 parts of `url`; never raises, unlike urllib.parse.urlsplit."""
    match = _URI.fullmatch(url)
    assert match is not None  # every group of the pattern is optional
    scheme, netloc, path, query, fragment = match.groups()
    if scheme is None or not _SCHEME.fullmatch(scheme):
        return UrlParts(None, None, url, None, None)
    return UrlParts(scheme.lower(), netloc, path, query, fragment)


def redact_url(url: str) -> str:
    """Return `url` without its query string, fragment and user name, which may carry secrets.

    Never raises, whatever `url` holds. A plain path loses what follows `?` or `#`.

    >>> redact_url("https://user:pw@cdn.example/a/b.json.gz?Signature=abc&Key-Pair-Id=k#x")
    'https://cdn.example/a/b.json.gz'
    """
    parts = split_url(url)
    if parts.scheme is None:
        return url.split("?", 1)[0].split("#", 1)[0]
    authority = "" if parts.netloc is None else "//" + parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}:{authority}{parts.path}"


def url_secrets(url: str) -> list[str]:
    """The pieces of `url` that must not be shown, longest first.

    The query string, the fragment and the user name with password, each at least 4
    characters; the password and each query parameter value alone, at least 8. Each as
    written and percent-decoded.
    """
    parts = split_url(url)
    if parts.scheme is None:
        return []
    pieces: list[tuple[str, int]] = []
    if parts.netloc and "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        pieces += [(userinfo, _MIN_SECRET), (userinfo.partition(":")[2], _MIN_VALUE)]
    for text in (parts.query, parts.fragment):
        if text:
            pieces.append((text, _MIN_SECRET))
            pieces += [(pair.partition("=")[2], _MIN_VALUE) for pair in text.split("&")]
    found = {
        form for piece, least in pieces for form in (piece, unquote(piece)) if len(form) >= least
    }
    return sorted(found, key=lambda form: (-len(form), form))


def redact_text(text: str, urls: Iterable[str] = ()) -> str:
    """`text` with the secrets of `urls` wherever they appear, and every URL in it redacted.

    For messages built by other code (tracebacks, library errors), where a URL may show up in
    pieces: the secrets of `urls` go first, then every URL loses what :func:`redact_url`
    drops, and a query string after a bare path (`/f.json?sig=...`) is replaced.

    >>> redact_text("GET '/f.json?sig=a&b=c' failed", ["https://h.example/f.json?sig=a&b=c"])
    "GET '/f.json?[redacted]' failed"
    """
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, _REDACTED)
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    return _QUERY_IN_TEXT.sub("?" + _REDACTED, text)


class RedactingFormatter(logging.Formatter):
    """Log lines, tracebacks included, with URLs redacted (see :func:`redact_text`)."""

    def __init__(self, fmt: str, urls: Iterable[str] = ()):
        super().__init__(fmt)
        self.urls = tuple(urls)

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record), self.urls)
