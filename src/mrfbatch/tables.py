"""The tables' schemas and the value conversions: columns, the CMS schema's keys, JSON values
as cells, and the quality counts of what the schema did not expect.

This module knows the CMS in-network-rates schema (v1.0 to v2.x) and nothing about parsing:
any engine that decodes an object into dicts, lists, strings, ints and Decimals (or floats)
can hand it here. Keys are looked up by name, so their order in the file never matters.
Provider groups become rows here (`parse_groups`); in_network items in `mrfbatch.rates`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from typing import Any

import msgspec
import pyarrow as pa

# The compute core, without pyarrow.compute: that module builds a wrapper for each of its
# hundreds of functions when imported, 40 ms of every extraction for the two used here.
from pyarrow._compute import call_function

# Keys each object of the schema defines (schema 1.0 to 2.x). Anything else is counted.
ITEM_KEYS = frozenset(
    {
        "negotiation_arrangement",
        "name",
        "billing_code_type",
        "billing_code_type_version",
        "billing_code",
        "description",
        "negotiated_rates",
        "bundled_codes",
        "covered_services",
        "severity_of_illness",
    }
)
RATE_KEYS = frozenset({"negotiated_prices", "provider_groups", "provider_references"})
PRICE_KEYS = frozenset(
    {
        "negotiated_type",
        "negotiated_rate",
        "expiration_date",
        "service_code",
        "billing_class",
        "billing_code_modifier",
        "additional_information",
        "setting",
    }
)
REFERENCE_KEYS = frozenset({"provider_group_id", "provider_groups", "location", "network_name"})
GROUP_KEYS = frozenset({"npi", "tin"})
TIN_KEYS = frozenset({"type", "value", "business_name"})
_INT = frozenset({int})  # type sets: a check over a list without a Python call per value
_TEXT = frozenset({str, type(None)})
_CANONICAL = msgspec.json.Encoder()  # inline group keys
# The members of a bundled_codes or covered_services entry, in the order of their struct.
CODE_FIELDS = ("billing_code_type", "billing_code_type_version", "billing_code", "description")
CODE_KEYS = frozenset(CODE_FIELDS)

FILE_METADATA_KEYS = (
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
)
TOP_KEYS = frozenset({*FILE_METADATA_KEYS, "provider_references", "in_network"})

RATE_COLUMNS = (
    "network_id",
    "billing_code_type",
    "billing_code_type_version",
    "billing_code",
    "negotiation_arrangement",
    "name",
    "description",
    "negotiated_type",
    "negotiated_rate",
    "expiration_date",
    "billing_class",
    "setting",
    "service_code",
    "billing_code_modifier",
    "additional_information",
    "severity_of_illness",
    "bundled_codes",
    "covered_services",
    "provider_group_ids",
)
PROVIDER_COLUMNS = (
    "network_id",
    "provider_group_id",
    "npi",
    "tin_type",
    "tin_value",
    "business_name",
    "network_name",
    "source",
)

# The shape of the tables. Raise it when a column's type changes: finished tasks of a
# workflow run then have other tables than a new extraction writes, and are redone (their
# recipe holds it), so the run's views never mix the two. 2: bundled_codes and
# covered_services became CODE_LIST, lists of structs (they were "type:code" texts).
TABLES_VERSION = 2

TEXT_LIST = pa.list_(pa.string())
# bundled_codes and covered_services: every member of each entry, as text.
CODE_LIST = pa.list_(pa.struct([(name, pa.string()) for name in CODE_FIELDS]))
_RATE_TYPES = {
    "negotiated_rate": pa.float64(),
    "service_code": TEXT_LIST,
    "billing_code_modifier": TEXT_LIST,
    "bundled_codes": CODE_LIST,
    "covered_services": CODE_LIST,
    "provider_group_ids": TEXT_LIST,
}
RATES_SCHEMA = pa.schema([(c, _RATE_TYPES.get(c, pa.string())) for c in RATE_COLUMNS])
PROVIDERS_SCHEMA = pa.schema(
    [
        (c, pa.int64() if c == "npi" else TEXT_LIST if c == "network_name" else pa.string())
        for c in PROVIDER_COLUMNS
    ]
)

# Allowed-amounts files (`out_of_network`, schema 1.0 to 2.x): mrfbatch.allowed_amounts.
ALLOWED_TOP_KEYS = frozenset({*FILE_METADATA_KEYS, "out_of_network", "reporting_plans"})
ALLOWED_ITEM_KEYS = frozenset(
    {
        "name",
        "billing_code_type",
        "billing_code_type_version",
        "billing_code",
        "description",
        "allowed_amounts",
    }
)
ALLOWED_AMOUNT_KEYS = frozenset({"tin", "service_code", "billing_class", "setting", "payments"})
PAYMENT_KEYS = frozenset({"allowed_amount", "billing_code_modifier", "providers"})
BILLED_KEYS = frozenset({"billed_charge", "npi"})
ALLOWED_AMOUNTS_SCHEMA = pa.schema(
    [
        ("network_id", pa.string()),
        ("payment_id", pa.string()),
        ("billing_code_type", pa.string()),
        ("billing_code_type_version", pa.string()),
        ("billing_code", pa.string()),
        ("name", pa.string()),
        ("description", pa.string()),
        ("tin_type", pa.string()),
        ("tin_value", pa.string()),
        ("billing_class", pa.string()),
        ("setting", pa.string()),
        ("service_code", TEXT_LIST),
        ("allowed_amount", pa.float64()),
        ("billing_code_modifier", TEXT_LIST),
        ("provider_entries", pa.int64()),
    ]
)
ALLOWED_AMOUNT_PROVIDERS_SCHEMA = pa.schema(
    [
        ("network_id", pa.string()),
        ("payment_id", pa.string()),
        ("provider_entry", pa.int64()),
        ("npi", pa.int64()),
        ("billed_charge", pa.float64()),
    ]
)
# Each table's schema by its name (layout.TABLES; the writers and the run's database use it).
TABLE_SCHEMAS = {
    "rates": RATES_SCHEMA,
    "providers": PROVIDERS_SCHEMA,
    "allowed_amounts": ALLOWED_AMOUNTS_SCHEMA,
    "allowed_amount_providers": ALLOWED_AMOUNT_PROVIDERS_SCHEMA,
}

Columns = dict[str, list[Any]]


# One bundled or covered code as its struct takes it (and to_pylist gives it back): each of
# CODE_FIELDS, in order, to its text or None.
Code = dict[str, str | None]

# One provider group as stored and hashed: (npis, tin_type, tin_value, business_name).
Group = tuple[tuple[int, ...], str | None, str | None, str | None]

_MAX_NAMES = 50


@dataclass
class Quality:
    """Counts of what the schema did not expect, kept per extraction."""

    unknown_keys: int = 0
    unknown_key_names: Counter[str] = field(default_factory=Counter)
    invalid_values: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    def check_keys(self, obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
        for key in obj:
            if key not in known:
                self.unknown_keys += 1
                if len(self.unknown_key_names) < _MAX_NAMES or key in self.unknown_key_names:
                    self.unknown_key_names[f"{where}.{key}"] += 1

    def invalid(self, what: str) -> None:
        self.invalid_values += 1
        if len(self.invalid_examples) < 20:
            self.invalid_examples.append(what)


def group_key(value: object) -> str:
    """The join key of a `provider_group_id` or `provider_references` entry: its exact text.

    >>> group_key(Decimal("690.64470")), group_key(12), group_key("a7")
    ('690.64470', '12', 'a7')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"provider group id {value!r} is not a number or a string")
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise ValueError(f"provider group id {value!r} is not a number or a string")


def text(value: object, quality: Quality, what: str) -> str | None:
    """A scalar as text; numbers keep their published digits. Objects are invalid (null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    quality.invalid(f"{what}: expected text, found {type(value).__name__}")
    return None


def text_list(value: object, quality: Quality, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        value = [value]
    elif all(type(v) is str for v in value):
        return value  # the usual case; decoded lists are not shared, so no copy is needed
    return [t for t in (text(v, quality, what) for v in value) if t is not None]


def number(value: object, quality: Quality, what: str) -> float | None:
    if type(value) in _NUMBERS:
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, bool):
        quality.invalid(f"{what}: expected a number, found {value!r}")
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(parsed):
                return parsed
    if value is not None:
        quality.invalid(f"{what}: expected a number, found {value!r:.40}")
    return None


def code_list(value: object, quality: Quality, what: str) -> list[Code] | None:
    """A `bundled_codes` or `covered_services` array as its column holds it: each object's
    members as text (numbers keep their published digits), null where absent.

    >>> code_list([{"billing_code_type": "CPT", "billing_code": 27447}], Quality(), "x")
    [{'billing_code_type': 'CPT', 'billing_code_type_version': None, 'billing_code': '27447', \
'description': None}]
    """
    if not isinstance(value, list):
        return None if value is None else []
    out: list[Code] = []
    for entry in value:
        if not isinstance(entry, Mapping):
            quality.invalid(f"{what}: expected an object, found {type(entry).__name__}")
            continue
        quality.check_keys(entry, CODE_KEYS, what)
        out.append({name: text(entry.get(name), quality, f"{what}.{name}") for name in CODE_FIELDS})
    return out


def objects(value: object, quality: Quality, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        quality.invalid(f"{what}: expected an array, found {type(value).__name__}")
        return []
    if all(type(v) is dict for v in value):
        return value  # the usual case, without the slower ABC check per entry
    good = [v for v in value if isinstance(v, Mapping)]
    if len(good) != len(value):
        quality.invalid(f"{what}: {len(value) - len(good)} entries are not objects")
    return good


_NUMBERS = (Decimal, int, float)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def owner_indices(sizes: Sequence[int]) -> pa.Array:
    """The index of each row's owner, where owner i has sizes[i] rows, in order.

    >>> owner_indices([2, 0, 1]).to_pylist()
    [0, 0, 2]
    """
    ends = list(accumulate(sizes, initial=0))
    owners = pa.LargeListArray.from_arrays(pa.array(ends, pa.int64()), pa.nulls(ends[-1]))
    return call_function("list_parent_indices", [owners])


def repeat(value: object, kind: pa.DataType, n: int) -> pa.Array:
    """An array of `kind` holding `value` n times."""
    if n == 0:
        return pa.array([], kind)  # (pa.repeat of a list, 0 times, fails)
    if n >= _TAKE_LISTS and value is not None and pa.types.is_list(kind):
        # pa.repeat copies a list scalar value by value: 9 ms for 8192 rows of 5 codes (a
        # batch of a bundle), 0.6 ms so; slower below about 50 rows.
        return take(pa.array([value], kind), pa.repeat(pa.scalar(0, pa.int32()), n))
    return pa.repeat(pa.scalar(value, kind), n)


_TAKE_LISTS = 64


def take(values: pa.Array, indices: pa.Array) -> pa.Array:
    """values[i] for each i in indices (Arrow copies them in C).

    >>> take(pa.array(["a", "b"]), pa.array([1, 1, 0])).to_pylist()
    ['b', 'b', 'a']
    """
    return call_function("take", [values, indices])


def parse_groups(value: object, quality: Quality) -> list[Group]:
    """Normalize a `provider_groups` array into (npis, tin_type, tin_value, business_name)."""
    groups: list[Group] = []
    for g in objects(value, quality, "provider_groups"):
        usual = _usual_group(g)
        if usual is not None:
            groups.append(usual)
            continue
        quality.check_keys(g, GROUP_KEYS, "provider_groups")
        tin = g.get("tin")
        if not isinstance(tin, Mapping):
            quality.invalid(f"provider_groups.tin: expected an object, found {tin!r:.40}")
            tin = {}
        quality.check_keys(tin, TIN_KEYS, "tin")
        npis = npi_list(g.get("npi"), quality)
        groups.append(
            (
                npis,
                text(tin.get("type"), quality, "tin.type"),
                text(tin.get("value"), quality, "tin.value"),
                text(tin.get("business_name"), quality, "tin.business_name"),
            )
        )
    return groups


def _usual_group(g: Mapping[str, Any]) -> Group | None:
    """The group when it has the usual shape (nothing to count or convert), else None."""
    tin, npi = g.get("tin"), g.get("npi")
    if not (type(tin) is dict and type(npi) is list and npi and GROUP_KEYS.issuperset(g)):
        return None
    kind, value, name = tin.get("type"), tin.get("value"), tin.get("business_name")
    if (
        TIN_KEYS.issuperset(tin)
        and _INT.issuperset(map(type, npi))  # not bool, a subclass
        and min(npi) >= _INT64_MIN
        and max(npi) <= _INT64_MAX
        and _TEXT.issuperset(map(type, (kind, value, name)))
    ):
        return tuple(npi), kind, value, name
    return None


def npi_list(value: object, quality: Quality) -> tuple[int, ...]:
    """An `npi` array as int64 NPIs; `(0,)` when it is absent, empty or holds none."""
    if value is None or value == []:
        return (0,)
    if (
        isinstance(value, list)
        and _INT.issuperset(map(type, value))
        and min(value) >= _INT64_MIN
        and max(value) <= _INT64_MAX
    ):
        return tuple(value)  # the usual case: a list of JSON integers
    out = []
    for v in value if isinstance(value, list) else [value]:
        try:
            if isinstance(v, bool):
                raise ValueError
            n = int(v.strip()) if isinstance(v, str) else int(v)  # type: ignore[arg-type]
            if isinstance(v, Decimal | float) and n != v:
                raise ValueError
            if not _INT64_MIN <= n <= _INT64_MAX:
                raise ValueError
        except (TypeError, ValueError):
            quality.invalid(f"npi: expected a 10-digit number, found {v!r:.40}")
            continue
        out.append(n)
    return tuple(out) or (0,)


def inline_key(groups: list[Group]) -> str:
    """The generated key of an inline `provider_groups` list: equal content, equal key.

    The hash is of the groups as compact JSON (json.dumps with separators=(",", ":") and
    ensure_ascii=False writes the same bytes; msgspec writes them several times faster).
    """
    canonical = _CANONICAL.encode(groups)
    return "inline-" + hashlib.sha256(canonical).hexdigest()[:16]
