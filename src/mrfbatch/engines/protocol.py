"""The seam between the engines and the rest of mrfbatch.

What an engine calls (`DocumentHandler`) and what it is (`Engine`), the size limit it holds
values to, and the errors every engine raises in the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from mrfbatch.errors import JsonFormatError, ValueTooLargeError

MB = 1 << 20
# The largest value (an in_network item, a provider reference, a top-level value) an engine
# holds or builds; a larger one fails the extraction instead of exhausting memory.
DEFAULT_MAX_VALUE_MB = 2048
# How the fast engine checks the in_network items it skips: their structure only, or every
# byte (docs/guarantees.md#validation). The reference engine always checks every byte.
VALIDATIONS = ("structural", "full")


# (start, end, key_start, key_end, flags): an array element text[start:end] as the C scanner
# found it (mrfbatch._jsonscan.scan_elements), with the JSON text of its last member named the
# scan's key at text[key_start:key_end] (-1, -1 when none) and its flags (KEY_ESCAPED,
# LONE_SURROGATE).
Element = tuple[int, int, int, int, int]


class DocumentHandler(Protocol):
    """What an engine calls while it walks one in-network file, in file order.

    Top-level keys come one after the other, each after everything of the value before it: a
    key after `in_network` says that its items are all in.
    """

    def top_level_key(self, key: str) -> bool:
        """A top-level key was met; return False to have its value skipped undecoded."""

    def header(self, key: str, value: Any) -> None:
        """A decoded top-level value other than the two arrays."""

    def provider_references(self, text: bytes | bytearray, found: list[Element]) -> None:
        """`provider_references` entries, as JSON text: text[start:end] for each element of
        `found`, with its provider_group_id's JSON text at text[key_start:key_end] (-1, -1:
        none). `text` is valid only during the call. No entry is larger than the engine's
        `max_value`, and unpaired surrogate escapes are written as `\\u003f`, as yajl reads
        them."""

    def in_network_item(self, item: object) -> None:
        """One `in_network` item, as JSON text (a memoryview valid only during the call, or
        bytes) or decoded."""

    def out_of_network_item(self, item: object) -> None:
        """One `out_of_network` item of an allowed-amounts file, decoded. Only the reference
        engine calls it: it reads every allowed-amounts file (mrfbatch.run_extraction)."""

    def wants_all(self) -> bool:
        """Whether every `in_network` item is extracted, whatever its code: the fast engine
        then hands items over in runs (`in_network_items`), as it finds them. Otherwise (a
        whitelist) it may check no more than the structure of an item it skips."""

    def in_network_items(
        self,
        text: bytearray,
        found: list[Element],
        validate: Callable[[int, int], None] | None,
    ) -> None:
        """`in_network` items as JSON text, when `wants_all`: text[start:end] for each element
        of `found`, in order. `text` is valid only during the call; as for
        `provider_references`, no item is larger than `max_value` and unpaired surrogate
        escapes are written as `\\u003f`. `validate`, when given: the items were only skimmed
        (their strings closed, UTF-8, brackets balanced), and validate(start, end) checks one in
        full, or raises the error for its first fault (and writes its unpaired surrogate
        escapes as above), before it is decoded other than by a reader that checks it."""

    def wants(self, billing_code: object) -> bool:
        """Whether an item with this billing code is extracted (None: no code). The fast engine
        asks before it decodes anything of an item, and skips the others."""

    def skipped_item(self) -> None:
        """An `in_network` item was skipped undecoded: `wants` refused its code."""


class Engine(Protocol):
    name: str
    max_value: int  # the largest value (bytes) held or built whole; a larger one fails

    def scan(self, stream: BinaryIO, handler: DocumentHandler) -> None:
        """Walk the whole stream, raising MrfError subclasses on bad input."""


def truncated_json(name: str, decoded: int) -> JsonFormatError:
    """The error for JSON that stops before its end (same words from every engine)."""
    return JsonFormatError(
        f"JSON of {name} ends early after {decoded} decoded bytes: the file is truncated"
    )


def invalid_json(name: str, offset: int | None, detail: str) -> JsonFormatError:
    """The error for bytes that are not valid JSON at `offset` (same words from every engine)."""
    where = f"at decoded byte {offset}" if offset is not None else "somewhere"
    return JsonFormatError(f"invalid JSON in {name} {where}: {detail}")


def check_value_size(
    name: str, what: str, size: int, limit: int, start: int, start_before: int | None = None
) -> None:
    """Fail when a value already known to be `size` bytes or more is over `limit` bytes.

    An engine holds (the fast one) or builds (the reference) a whole value, so it calls this as
    the value grows. `start`: the decoded offset of the value's first byte, or, when an engine
    knows it only to within the piece it read, the first offset of that piece and
    `start_before` the offset after it.
    """
    if size <= limit:
        return
    where = (
        f"at decoded byte {start}"
        if start_before is None
        else f"between decoded bytes {start} and {start_before}"
    )
    raise ValueTooLargeError(
        f"{what} in {name} starting {where} is larger than the limit of {megabytes(limit)} "
        "(max_value_mb); raise max_value_mb if the machine has the memory for it"
    )


def megabytes(size: int) -> str:
    """`size` bytes for a message: whole MB (2**20) when it is a whole number of them."""
    return f"{size // MB:,} MB" if size % MB == 0 else f"{size:,} bytes"
