"""The document handler: routes what an engine finds to rows, writers and the provider store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mrfbatch.engines import Element
from mrfbatch.errors import AllowedAmountsFile, FileKindError
from mrfbatch.providers import ProviderStore
from mrfbatch.rates import ItemRows
from mrfbatch.tables import FILE_METADATA_KEYS, TOP_KEYS, Quality
from mrfbatch.tables import text as text_of
from mrfbatch.whitelist import CodeFilter
from mrfbatch.writers import TableWriter

log = logging.getLogger(__name__)

# Top-level keys that give away another kind of price-transparency file.
_OTHER_KINDS = {
    "reporting_structure": (
        "a table-of-contents (index) file: it lists in-network files under `reporting_structure`"
        "; give it as an index source, or extract one of its `in_network_files` locations"
    ),
}
BOTH_KINDS = (
    "this JSON has both `in_network` and `out_of_network` at the top level; expected an "
    "in-network-rates file or an allowed-amounts file, not both in one"
)


class Extraction:
    """What an engine finds goes here (a `mrfbatch.engines.DocumentHandler`)."""

    def __init__(
        self,
        network_id: str,
        whitelist: frozenset[str] | None,
        rates: TableWriter,
        store: ProviderStore,
        quality: Quality,
    ):
        self.codes = CodeFilter(whitelist)
        self.rates = rates
        self.store = store
        self.quality = quality
        self.items = ItemRows(network_id, quality, store.add_inline)
        self.file_metadata: dict[str, str | None] = dict.fromkeys(FILE_METADATA_KEYS)
        self.items_seen = 0
        self.items_matched = 0
        self.keys_seen: list[str] = []
        self.in_network_done = False

    @property
    def referenced(self) -> set[str]:
        return self.items.referenced

    def wants(self, billing_code: object) -> bool:
        """Whether an item with this billing code is extracted."""
        return self.codes.wants(billing_code)

    # DocumentHandler

    def top_level_key(self, key: str) -> bool:
        if key in _OTHER_KINDS:
            raise FileKindError(f"this is not an in-network-rates file but {_OTHER_KINDS[key]}")
        if key == "out_of_network":
            if "in_network" in self.keys_seen:
                raise FileKindError(BOTH_KINDS)
            raise AllowedAmountsFile  # read again as one (mrfbatch.allowed_amounts)
        # A key after `in_network`: its items are all in, so every needed group key is known.
        self.in_network_done = self.in_network_done or "in_network" in self.keys_seen
        self.keys_seen.append(key)
        if key not in TOP_KEYS:
            self.quality.check_keys({key: None}, TOP_KEYS, "top")
            return False
        return True

    def header(self, key: str, value: Any) -> None:
        if key in ("in_network", "provider_references"):
            raise FileKindError(
                f"`{key}` is {type(value).__name__ if value is not None else 'null'}; "
                "expected an array"
            )
        self.file_metadata[key] = text_of(value, self.quality, key)

    def provider_references(self, text: bytes | bytearray, found: list[Element]) -> None:
        # After in_network every needed key is known, so unneeded groups need not be kept.
        self.store.add_references(text, found, self.referenced if self.in_network_done else None)

    def in_network_item(self, item: object) -> None:
        """One item, decoded or as JSON text: its rows are written when it is wanted."""
        self.items_seen += 1
        found = self.items.read(item)
        if found is None:
            self.quality.invalid(f"in_network: item {self.items_seen} is not an object")
        elif self.codes.keep(found.billing_code):
            self.items_matched += 1
            found.write(self.rates)

    def wants_all(self) -> bool:
        return self.codes.whitelist is None

    def in_network_items(
        self,
        text: bytearray,
        found: list[Element],
        validate: Callable[[int, int], None] | None,
    ) -> None:
        """Items all wanted: those of the usual shape read in C a batch at a time
        (`ItemRows.write_usual`, which checks what it reads), any other one validated (when
        `validate` is given) and read as `in_network_item` reads it."""
        at = 0
        while at < len(found):
            usual = self.items.write_usual(text, found, at, self.rates)
            self.items_seen += usual - at
            self.items_matched += usual - at
            at = usual
            if at < len(found):
                start, end = found[at][:2]
                if validate is not None:
                    validate(start, end)
                with memoryview(text)[start:end] as raw:
                    self.in_network_item(raw)
                at += 1

    def out_of_network_item(self, item: object) -> None:
        raise FileKindError(BOTH_KINDS)  # never met: top_level_key switched before it

    def skipped_item(self) -> None:
        """An item an engine skipped without decoding (its code is not whitelisted)."""
        self.items_seen += 1

    def finish(self) -> None:
        """Called at the end of the stream: the rows still gathered are written; was this an
        in-network file at all?"""
        self.items.write_gathered(self.rates)
        if "in_network" in self.keys_seen:
            return
        if "provider_groups" in self.keys_seen:
            raise FileKindError(
                "this is not an in-network-rates file but a provider-reference file "
                "(`provider_groups` at the top level, no `in_network`)"
            )
        keys = ", ".join(self.keys_seen[:12]) or "none"
        raise FileKindError(
            f"no `in_network` array in this JSON (top-level keys: {keys}); "
            "expected an in-network-rates file (`in_network`) or an allowed-amounts file "
            "(`out_of_network`)"
        )
