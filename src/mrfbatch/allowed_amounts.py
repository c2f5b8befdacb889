"""Allowed-amounts files: each `out_of_network` item made into payment and provider rows.

An allowed-amounts file (CMS schema 1.0 to 2.x) lists, per item (a billing code), the
out-of-network amounts a plan allowed: per TIN and billing class (`allowed_amounts`), the
distinct amounts paid (`payments`), and per payment the providers who billed it with their
billed charge (`providers`: NPIs and `billed_charge`). Two tables come out of it
(docs/output.md):

    allowed_amounts           one row per payment: the item, the TIN, the allowed amount
    allowed_amount_providers  one row per payment, provider entry and NPI: the billed charge

A payment is named by `payment_id`, `{item}.{allowed amount}.{payment}`: the positions (from 0)
in `out_of_network`, the item's `allowed_amounts` and that entry's `payments`, counting every
entry, wanted or not, so the same file always gives the same ids. The reference engine hands
each item over decoded (`AllowedAmounts` is its document handler); memory holds one item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mrfbatch.engines import Element
from mrfbatch.errors import FileKindError
from mrfbatch.tables import (
    ALLOWED_AMOUNT_KEYS,
    ALLOWED_AMOUNT_PROVIDERS_SCHEMA,
    ALLOWED_AMOUNTS_SCHEMA,
    ALLOWED_ITEM_KEYS,
    ALLOWED_TOP_KEYS,
    BILLED_KEYS,
    FILE_METADATA_KEYS,
    PAYMENT_KEYS,
    TIN_KEYS,
    Columns,
    Quality,
    npi_list,
    number,
    text,
    text_list,
)
from mrfbatch.whitelist import CodeFilter
from mrfbatch.writers import TableWriter

AMOUNT_COLUMNS = tuple(ALLOWED_AMOUNTS_SCHEMA.names)
PROVIDER_COLUMNS = tuple(ALLOWED_AMOUNT_PROVIDERS_SCHEMA.names)
BOTH_KINDS = (
    "this JSON has both `out_of_network` and `in_network` at the top level; expected an "
    "allowed-amounts file or an in-network-rates file, not both in one"
)


class AllowedAmounts:
    """The document handler of an allowed-amounts file: its rows go to two writers."""

    def __init__(
        self,
        network_id: str,
        whitelist: frozenset[str] | None,
        amounts: TableWriter,
        providers: TableWriter,
        quality: Quality,
    ):
        self.network_id = network_id
        self.codes = CodeFilter(whitelist)
        self.amounts = amounts
        self.providers = providers
        self.quality = quality
        self.file_metadata: dict[str, str | None] = dict.fromkeys(FILE_METADATA_KEYS)
        self.items_seen = 0
        self.items_matched = 0
        self.keys_seen: list[str] = []

    def wants(self, billing_code: object) -> bool:
        """Whether an item with this billing code is extracted."""
        return self.codes.wants(billing_code)

    # DocumentHandler

    def top_level_key(self, key: str) -> bool:
        if key == "in_network":
            raise FileKindError(BOTH_KINDS)
        self.keys_seen.append(key)
        if key not in ALLOWED_TOP_KEYS:
            self.quality.check_keys({key: None}, ALLOWED_TOP_KEYS, "top")
            return False
        # 1.x names its plans in `reporting_plans`, a list the file's header has no place for:
        # the plans come from the source (plan_metadata), as for a multi-plan in-network file.
        return key != "reporting_plans"

    def header(self, key: str, value: Any) -> None:
        if key == "out_of_network":
            found = type(value).__name__ if value is not None else "null"
            raise FileKindError(f"`out_of_network` is {found}; expected an array")
        self.file_metadata[key] = text(value, self.quality, key)

    def out_of_network_item(self, item: object) -> None:
        """One item, decoded: its rows are written when its billing code is wanted."""
        index = self.items_seen
        self.items_seen += 1
        if not isinstance(item, Mapping):
            self.quality.invalid(f"out_of_network: item {index + 1} is not an object")
            return
        if not self.codes.keep(item.get("billing_code")):
            return
        self.items_matched += 1
        self.quality.check_keys(item, ALLOWED_ITEM_KEYS, "out_of_network")
        code = {
            key: text(item.get(key), self.quality, key)
            for key in (
                "billing_code_type",
                "billing_code_type_version",
                "billing_code",
                "name",
                "description",
            )
        }
        rows = _Rows(self.network_id, self.quality)
        for amount_index, amount in enumerate(_entries(item, "allowed_amounts", self.quality)):
            if amount is not None:
                rows.add_amount(f"{index}.{amount_index}", code, amount)
        self.amounts.write_columns(rows.amounts, rows.amount_rows)
        self.providers.write_columns(rows.providers, rows.provider_rows)

    def in_network_item(self, item: object) -> None:
        raise FileKindError(BOTH_KINDS)  # never met: top_level_key refuses `in_network` first

    def wants_all(self) -> bool:
        return self.codes.whitelist is None

    def in_network_items(
        self, text: bytearray, found: list[Element], validate: Callable[[int, int], None] | None
    ) -> None:
        raise FileKindError(BOTH_KINDS)  # never met, as in_network_item

    def provider_references(self, text: bytes | bytearray, found: list[Element]) -> None:
        """Never called: `provider_references` is not a key of this schema, so it is skipped."""

    def skipped_item(self) -> None:
        self.items_seen += 1

    def finish(self) -> None:
        """Called at the end of the stream."""
        if "out_of_network" not in self.keys_seen:
            keys = ", ".join(self.keys_seen[:12]) or "none"
            raise FileKindError(
                f"no `out_of_network` array in this JSON (top-level keys: {keys}); expected an "
                "allowed-amounts file"
            )


class _Rows:
    """The rows of one item, as columns of both tables."""

    def __init__(self, network_id: str, quality: Quality):
        self.network_id = network_id
        self.quality = quality
        self.amounts: Columns = {name: [] for name in AMOUNT_COLUMNS}
        self.providers: Columns = {name: [] for name in PROVIDER_COLUMNS}
        self.amount_rows = 0
        self.provider_rows = 0

    def add_amount(
        self, prefix: str, code: Mapping[str, str | None], amount: Mapping[str, Any]
    ) -> None:
        quality = self.quality
        quality.check_keys(amount, ALLOWED_AMOUNT_KEYS, "allowed_amounts")
        tin = amount.get("tin")
        if tin is None:
            tin = {}
        elif not isinstance(tin, Mapping):
            quality.invalid(f"allowed_amounts.tin: expected an object, found {tin!r:.40}")
            tin = {}
        quality.check_keys(tin, TIN_KEYS, "tin")
        shared = {
            **code,
            "tin_type": text(tin.get("type"), quality, "tin.type"),
            "tin_value": text(tin.get("value"), quality, "tin.value"),
            "billing_class": text(amount.get("billing_class"), quality, "billing_class"),
            "setting": text(amount.get("setting"), quality, "setting"),
            "service_code": text_list(amount.get("service_code"), quality, "service_code"),
        }
        for payment_index, payment in enumerate(_entries(amount, "payments", quality)):
            if payment is not None:
                self.add_payment(f"{prefix}.{payment_index}", shared, payment)

    def add_payment(
        self, payment_id: str, shared: Mapping[str, Any], payment: Mapping[str, Any]
    ) -> None:
        quality = self.quality
        quality.check_keys(payment, PAYMENT_KEYS, "payments")
        entries = 0
        for entry_index, entry in enumerate(_entries(payment, "providers", quality)):
            if entry is None:
                continue
            entries += 1
            quality.check_keys(entry, BILLED_KEYS, "providers")
            charge = number(entry.get("billed_charge"), quality, "billed_charge")
            for npi in npi_list(entry.get("npi"), quality):
                self._append(
                    self.providers,
                    network_id=self.network_id,
                    payment_id=payment_id,
                    provider_entry=entry_index,
                    npi=npi,
                    billed_charge=charge,
                )
                self.provider_rows += 1
        self._append(
            self.amounts,
            network_id=self.network_id,
            payment_id=payment_id,
            **shared,
            allowed_amount=number(payment.get("allowed_amount"), quality, "allowed_amount"),
            billing_code_modifier=text_list(
                payment.get("billing_code_modifier"), quality, "billing_code_modifier"
            ),
            provider_entries=entries,
        )
        self.amount_rows += 1

    @staticmethod
    def _append(columns: Columns, **row: Any) -> None:
        for name, values in columns.items():
            values.append(row[name])


def _entries(
    owner: Mapping[str, Any], key: str, quality: Quality
) -> list[Mapping[str, Any] | None]:
    """The objects of the array `owner[key]`, each at its position; None where an entry is not
    an object (counted as an invalid value, its position kept so later ids do not shift)."""
    value = owner.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        quality.invalid(f"{key}: expected an array, found {type(value).__name__}")
        return []
    entries: list[Mapping[str, Any] | None] = []
    for position, entry in enumerate(value):
        if isinstance(entry, Mapping):
            entries.append(entry)
        else:
            quality.invalid(f"{key}: entry {position + 1} is not an object")
            entries.append(None)
    return entries
