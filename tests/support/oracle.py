"""The oracle of the synthetic generator: what an extraction of a synthetic file should produce.

:func:`expected` computes the rows and counts from the generated document alone, per
docs/output.md (:meth:`synth.SynthFile.expected` calls it). Pure stdlib. It reads a generated
file through :class:`Generated`, so it imports nothing from the generator, which imports it.

Inline ``provider_groups`` get the placeholder key ``inline:<n>`` in the oracle;
:func:`canonical` replaces any ``inline…`` key (the oracle's or the extractor's SHA-256 one) by
the set of its provider rows, so both sides compare equal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .rawjson import Json

_METADATA_KEYS = [
    "reporting_entity_name",
    "reporting_entity_type",
    "plan_name",
    "plan_id_type",
    "plan_id",
    "plan_market_type",
    "plan_sponsor_name",
    "issuer_name",
    "last_updated_on",
    "version",
]

# The members of a bundled_codes / covered_services entry, in the order the column's struct has.
_CODE_KEYS = ("billing_code_type", "billing_code_type_version", "billing_code", "description")


class Generated(Protocol):
    """What the oracle reads of a generated file (a :class:`synth.SynthFile`)."""

    document: dict[str, Any]
    remote_files: dict[str, dict[str, Any]]  # location URL -> provider-reference file
    unknown_outside_items: int  # unknown keys inserted at top level and in provider references
    unknown_per_item: list[int]  # parallel to in_network
    unknown_names: set[str]


@dataclass
class Expected:
    """What an extraction of a generated file should report."""

    rates: list[dict[str, Any]]
    providers: list[dict[str, Any]]
    items_seen: int
    items_matched: int
    unknown_keys: int
    unknown_key_names: set[str]
    unresolved_references: int
    remote_locations: set[str]  # distinct locations of the groups referenced by written rates
    file_metadata: dict[str, Any]


def _text(value: Json) -> str | None:
    return None if value is None else str(value)


def _texts(values: Json) -> list[str] | None:
    return None if values is None else [str(v) for v in values]


def _provider_rows(
    network_id: str, key: str, groups: Json, network_name: Json, source: str
) -> list[dict[str, Any]]:
    rows = []
    for group in groups:
        tin = group["tin"]
        for npi in group.get("npi") or [0]:
            rows.append(
                {
                    "network_id": network_id,
                    "provider_group_id": key,
                    "npi": int(npi),
                    "tin_type": tin["type"],
                    "tin_value": tin["value"],
                    "business_name": tin.get("business_name"),
                    "network_name": _texts(network_name),
                    "source": source,
                }
            )
    return rows


def expected(
    sf: Generated,
    network_id: str,
    whitelist: Iterable[str] | None = None,
    failed_locations: Collection[str] = (),
) -> Expected:
    """Rows and counts of an extraction of sf per docs/output.md; whitelist None keeps every
    item, and providers of the remote files at failed_locations are missing.

    Example::

        expected(generate(SynthConfig(seed=1)), "net", whitelist={"99213"}).rates
    """
    doc = sf.document
    wanted = None if whitelist is None else {c.strip().upper() for c in whitelist if c.strip()}
    references = {str(r["provider_group_id"]): r for r in doc.get("provider_references", [])}
    inline_keys: dict[str, str] = {}  # content -> "inline:<n>"
    rates: list[dict[str, Any]] = []
    providers: list[dict[str, Any]] = []
    used: set[str] = set()
    unresolved: set[str] = set()
    locations: set[str] = set()
    items = doc.get("in_network", [])
    unknown = sf.unknown_outside_items
    matched = 0
    for item, item_unknown in zip(items, sf.unknown_per_item, strict=True):
        if wanted is not None and str(item["billing_code"]).strip().upper() not in wanted:
            continue
        matched += 1
        unknown += item_unknown
        for rate in item["negotiated_rates"]:
            keys = [str(ref) for ref in rate.get("provider_references", [])]
            for key in keys:
                if key in used:
                    continue
                used.add(key)
                ref = references.get(key)
                if ref is None:
                    unresolved.add(key)
                elif "location" in ref:
                    locations.add(ref["location"])
                    if ref["location"] not in failed_locations:
                        groups = sf.remote_files[ref["location"]]["provider_groups"]
                        providers += _provider_rows(network_id, key, groups, None, "remote")
                else:
                    groups, names = ref["provider_groups"], ref.get("network_name")
                    providers += _provider_rows(network_id, key, groups, names, "file")
            if "provider_groups" in rate:
                content = json.dumps(rate["provider_groups"], sort_keys=True)
                if content not in inline_keys:
                    inline_keys[content] = key = f"inline:{len(inline_keys)}"
                    providers += _provider_rows(
                        network_id, key, rate["provider_groups"], None, "inline"
                    )
                keys.append(inline_keys[content])
            for price in rate["negotiated_prices"]:
                rates.append(_rate_row(network_id, item, price, keys))
    return Expected(
        rates=rates,
        providers=providers,
        items_seen=len(items),
        items_matched=matched,
        unknown_keys=unknown,
        unknown_key_names=set(sf.unknown_names) if unknown else set(),
        unresolved_references=len(unresolved),
        remote_locations=locations,
        file_metadata={k: doc.get(k) for k in _METADATA_KEYS},
    )


def _rate_row(
    network_id: str, item: Mapping[str, Json], price: Mapping[str, Json], keys: list[str]
) -> dict[str, Any]:
    def codes(name: str) -> list[dict[str, str | None]] | None:
        entries = item.get(name)
        if entries is None:
            return None
        return [{key: _text(e.get(key)) for key in _CODE_KEYS} for e in entries]

    return {
        "network_id": network_id,
        "billing_code_type": _text(item.get("billing_code_type")),
        "billing_code_type_version": _text(item.get("billing_code_type_version")),
        "billing_code": _text(item.get("billing_code")),
        "negotiation_arrangement": _text(item.get("negotiation_arrangement")),
        "name": _text(item.get("name")),
        "description": _text(item.get("description")),
        "negotiated_type": _text(price.get("negotiated_type")),
        "negotiated_rate": float(price["negotiated_rate"]),
        "expiration_date": _text(price.get("expiration_date")),
        "billing_class": _text(price.get("billing_class")),
        "setting": _text(price.get("setting")),
        "service_code": _texts(price.get("service_code")),
        "billing_code_modifier": _texts(price.get("billing_code_modifier")),
        "additional_information": _text(price.get("additional_information")),
        "severity_of_illness": _text(item.get("severity_of_illness")),
        "bundled_codes": codes("bundled_codes"),
        "covered_services": codes("covered_services"),
        "provider_group_ids": list(keys),
    }


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):  # a bundled or covered code
        return tuple((k, _freeze(v)) for k, v in sorted(value.items()))
    return tuple(_freeze(v) for v in value) if isinstance(value, list | tuple) else value


def canonical(
    rates: Iterable[Mapping[str, Any]], providers: Iterable[Mapping[str, Any]]
) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """Order-independent multisets of rate and provider rows, comparable across key schemes.

    Any provider_group_id starting with "inline" (the oracle's ``inline:<n>`` or an extractor's
    ``inline-<hex>``) is replaced by ``("inline", frozenset of (npi, tin_type, tin_value))``
    taken from the providers rows carrying that key.
    """
    providers = list(providers)
    contents: dict[str, set[tuple[Any, ...]]] = {}
    for row in providers:
        key = str(row["provider_group_id"])
        if key.startswith("inline"):
            contents.setdefault(key, set()).add((row["npi"], row["tin_type"], row["tin_value"]))

    def resolve(key: Any) -> Any:
        if isinstance(key, str) and key.startswith("inline"):
            return ("inline", frozenset(contents.get(key, ())))
        return key

    def frozen(row: Mapping[str, Any], column: str) -> tuple[Any, ...]:
        out = []
        for name in sorted(row):
            value = row[name]
            if name == column:
                value = [resolve(k) for k in value] if isinstance(value, list) else resolve(value)
            out.append((name, _freeze(value)))
        return tuple(out)

    return (
        Counter(frozen(r, "provider_group_ids") for r in rates),
        Counter(frozen(p, "provider_group_id") for p in providers),
    )
