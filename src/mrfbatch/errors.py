"""Exceptions raised by mrfbatch.

The library raises; only the command line turns these into messages and exit codes.
Every message says what was found, what was expected, and where. `retryable` says whether
trying the same thing again may succeed (a dropped connection) or cannot (an HTTP 404, invalid
JSON): the workflow never retries the second kind.
"""

from __future__ import annotations


class MrfError(Exception):
    """Base class of every error mrfbatch raises on purpose."""

    retryable = False  # the class's default; `retryable=` on one error overrides it

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class UsageError(MrfError):
    """An argument or setting is invalid (the caller's mistake, not the file's)."""


class BackendError(MrfError):
    """A compiled part is missing: ijson's C backend (reference engine), mrfbatch._jsonscan."""


class WhitelistError(MrfError):
    """The billing-code whitelist file is missing, unreadable, or in neither accepted form."""


class TransportError(MrfError):
    """The file could not be fetched: HTTP status, connection failure, or a short body."""

    retryable = True  # except where it says otherwise: HTTP 404, a missing local file, ...


class CompressionError(MrfError):
    """The compressed stream is corrupt or ends early, or a zip archive is unusable."""

    retryable = True  # a body cut short without a Content-Length ends the stream early


class JsonFormatError(MrfError):
    """The bytes are not valid JSON, or the JSON ends early."""


class ValueTooLargeError(MrfError):
    """One JSON value (an in_network item, a provider reference) is larger than the limit."""


class FileKindError(MrfError):
    """The JSON is valid but is not an in-network-rates file (e.g. a table of contents)."""


class AllowedAmountsFile(Exception):  # noqa: N818 (a signal, not an error)
    """Not an error: the file met is an allowed-amounts file, to be read again as one."""


class UnreachableError(TransportError):
    """The host could not be reached at all (name resolution, connect or read timeout)."""


class RestartFromZero(TransportError):
    """A broken transfer cannot go on with the same version of the file: read it from the start."""


class SourceError(MrfError):
    """A source (CSV, index, URL list) is unusable."""
