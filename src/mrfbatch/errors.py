"""Exceptions raised by mrfbatch.

The library raises; only the command line turns these into messages and exit codes.
Every message says what was found, what was expected, and where.
"""

from __future__ import annotations


class MrfError(Exception):
    """Base class of every error mrfbatch raises on purpose."""


class UsageError(MrfError):
    """An argument or setting is invalid (the caller's mistake, not the file's)."""


class BackendError(MrfError):
    """A compiled part is missing: ijson's C backend (reference engine), mrfbatch._jsonscan."""


class WhitelistError(MrfError):
    """The billing-code whitelist file is missing, unreadable, or in neither accepted form."""


class TransportError(MrfError):
    """The file could not be fetched: HTTP status, connection failure, or a short body."""


class CompressionError(MrfError):
    """The compressed stream is corrupt or ends early, or a zip archive is unusable."""


class JsonFormatError(MrfError):
    """The bytes are not valid JSON, or the JSON ends early."""


class ValueTooLargeError(MrfError):
    """One JSON value (an in_network item, a provider reference) is larger than the limit."""


class FileKindError(MrfError):
    """The JSON is valid but is not an in-network-rates file (e.g. a table of contents)."""


class UnreachableError(TransportError):
    """The host could not be reached at all (name resolution, connect or read timeout)."""


class RestartFromZero(TransportError):
    """A broken transfer cannot go on with the same version of the file: read it from the start."""


class SourceError(MrfError):
    """A source (CSV, index, URL list) is unusable."""
