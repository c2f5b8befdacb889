"""The proxy, if any, that an http(s) URL is fetched through, and the connection to it.

The environment decides, read as Python's urllib reads it (`getproxies_environment`):
`https_proxy` for https URLs, `http_proxy` for http ones, each also in upper case; where both
cases are set the lower-case one wins, and an empty lower-case one turns the other off.
`no_proxy` (or `NO_PROXY`) lists hosts fetched directly: comma-separated names, each matching
the host itself and every host under it (`example.org` and `.example.org` both match
`cdn.example.org`), `host:port` matching that port only, and `*` matching every host (no CIDR
ranges). A proxy is `http://[user:password@]host[:port]` (port 80 by default; no scheme means
http://); its user and password go in a `Proxy-Authorization: Basic` header and are never
shown.

An http URL is asked of the proxy as an absolute URI (`GET http://host/path`); an https URL
through a tunnel (`CONNECT host:443`), then TLS with the origin, whose certificate is checked
as without a proxy.
"""

from __future__ import annotations

import base64
import http.client
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import getproxies_environment

from mrfbatch.errors import TransportError
from mrfbatch.redact import redact_url

# http.client's words when a proxy answers CONNECT with anything but 200 (Python 3.11-3.13).
_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})\s*(.*)")
_RETRY_TUNNEL = frozenset({502, 503, 504})
# urllib's no_proxy matching: public in CPython, but typeshed does not declare it.
_bypass: Callable[[str, dict[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: where it listens, what to tell it, and how to name it in messages."""

    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization header, from the proxy URL's user info
    shown: str  # http://host:port: the proxy's URL without user or password


def proxy_for(url: str) -> Proxy | None:
    """The proxy the environment names for `url` (an http or https URL), or None: direct.

    Raises TransportError (not retryable) when the proxy setting cannot be used.
    """
    parts = urlsplit(url)
    proxies = getproxies_environment()
    setting = proxies.get(parts.scheme.lower())
    if not setting or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if _bypass(host if parts.port is None else f"{host}:{parts.port}", proxies):
        return None
    scheme = parts.scheme.lower()
    return parse_proxy(setting, f"{scheme}_proxy (or {scheme.upper()}_PROXY)")


def parse_proxy(setting: str, name: str) -> Proxy:
    """The proxy of one setting (`name` is the variable, for messages)."""
    text = setting.strip()
    if "://" not in text:
        text = "http://" + text
    shown = redact_url(text)
    try:
        parts = urlsplit(text)
        port = parts.port or 80
    except ValueError:
        raise TransportError(
            f"the proxy {shown} in {name} is not a valid URL: expected http://host:port",
            retryable=False,
        ) from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise TransportError(
            f"the proxy {shown} in {name} cannot be used: expected http://host:port "
            "(a proxy reached over plain HTTP; https:// and socks proxies are not supported)",
            retryable=False,
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization, f"http://{_authority(parts, port)}")


def _authority(parts: SplitResult, port: int | None) -> str:
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def open_connection(
    url: str, proxy: Proxy | None, timeout: float, headers: dict[str, str]
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """A connection that reaches `url`, the request target to send on it, and `headers` with
    what the proxy needs added. Nothing is sent yet: a tunnel opens with the first request.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    https = parts.scheme.lower() == "https"
    if proxy is None:
        cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
        return cls(host, parts.port, timeout=timeout), target, headers
    auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
    if not https:  # the proxy is asked for the absolute URI, without the URL's user info
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
        return conn, f"http://{_authority(parts, parts.port)}{target}", headers | auth
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout)
    conn.set_tunnel(host, parts.port or 443, headers=auth)
    return conn, target, headers


def tunnel_refusal(exc: Exception, proxy: Proxy | None, url: str) -> TransportError | None:
    """The error to raise when `exc` is a proxy's refusal of CONNECT, else None.

    Retryable when the proxy answered 502, 503 or 504 (it could not reach the host, for now).
    """
    match = _TUNNEL_REFUSED.match(str(exc))
    if proxy is None or match is None or not isinstance(exc, OSError):
        return None
    status = int(match.group(1))
    parts = urlsplit(url)
    message = (
        f"proxy {proxy.shown} refused the tunnel (CONNECT) to "
        f"{_authority(parts, parts.port or 443)}: HTTP {status} {match.group(2)}".rstrip()
    )
    if status == 407:
        message += " (check the user and password in https_proxy)"
    if status in _RETRY_TUNNEL:
        return TransportError(message)
    return TransportError(f"{message}, for {redact_url(url)}", retryable=False)
