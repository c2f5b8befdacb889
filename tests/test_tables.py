"""The tables' value conversions (mrfbatch.tables): group keys, numbers, provider groups."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from mrfbatch.tables import (
    CODE_LIST,
    TEXT_LIST,
    Quality,
    group_key,
    inline_key,
    number,
    parse_groups,
    repeat,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (Decimal("690.64470"), "690.64470"),
        (Decimal("40.0000000001"), "40.0000000001"),
        ("abc-1", "abc-1"),
        (Decimal("1E+3"), "1E+3"),
    ],
)
def test_group_key_keeps_exact_text(value: object, expected: str) -> None:
    assert group_key(value) == expected


@pytest.mark.parametrize("value", [None, True, [1], {"a": 1}])
def test_group_key_rejects_non_scalars(value: object) -> None:
    with pytest.raises(ValueError, match=r"is not a number or a string"):
        group_key(value)


@pytest.mark.parametrize(
    ("value", "expected", "invalid"),
    [
        (Decimal("123.45"), 123.45, 0),
        (12, 12.0, 0),
        ("99.5", 99.5, 0),
        ("1,5", None, 1),
        ("nan", None, 1),
        (True, None, 1),
        (None, None, 0),
    ],
)
def test_number_parses_only_real_numbers(
    value: object, expected: float | None, invalid: int
) -> None:
    quality = Quality()
    assert number(value, quality, "negotiated_rate") == expected
    assert quality.invalid_values == invalid


def test_parse_groups_npi_forms() -> None:
    quality = Quality()
    groups = parse_groups(
        [
            {"npi": ["1234567890", 1234567891], "tin": {"type": "ein", "value": "12-3456789"}},
            {"npi": [0], "tin": {"type": "npi", "value": "1234567890", "business_name": "B"}},
            {"tin": {"type": "ein", "value": "99-0000000"}, "extra": 1},
        ],
        quality,
    )
    assert groups == [
        ((1234567890, 1234567891), "ein", "12-3456789", None),
        ((0,), "npi", "1234567890", "B"),
        ((0,), "ein", "99-0000000", None),
    ]
    assert quality.unknown_keys == 1


def test_inline_key_depends_only_on_content() -> None:
    a = [((1234567890,), "ein", "12-3456789", None)]
    b = [((1234567890,), "ein", "12-3456789", None)]
    c = [((1234567890,), "ein", "12-3456780", None)]
    assert inline_key(a) == inline_key(b) != inline_key(c)
    assert inline_key(a).startswith("inline-") and len(inline_key(a)) == len("inline-") + 16


@pytest.mark.parametrize(
    "name",
    ['Clinic "North"', "back\\slash", "tab\tnew\nline\r\x00\x1f\x7f", "Café Ünïcode", "😀 𝄞", None],
)
def test_inline_key_hashes_the_groups_compact_json(name: str | None) -> None:
    """The key is "inline-" and 16 hex digits of SHA-256 over the groups as json.dumps writes
    them compactly without ASCII escapes; so it stays what earlier versions wrote."""
    groups = [((1234567890, 1987654321), "ein", "12-3456789", name), ((0,), None, "x", None)]
    canonical = json.dumps(groups, separators=(",", ":"), ensure_ascii=False).encode()
    assert inline_key(groups) == "inline-" + hashlib.sha256(canonical).hexdigest()[:16]


KNEE = {
    "billing_code_type": "CPT",
    "billing_code_type_version": "2026",
    "billing_code": "27447",
    "description": None,
}


@pytest.mark.parametrize("n", [0, 1, 63, 64, 8192])
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([KNEE, {**KNEE, "billing_code": "27446"}], CODE_LIST),
        ([], CODE_LIST),
        (None, CODE_LIST),
        (["a", "b"], TEXT_LIST),
        ("x", pa.string()),
    ],
)
def test_repeat_gives_the_value_n_times(value: object, kind: pa.DataType, n: int) -> None:
    """Short and long runs (a list is taken, not repeated, from 64 rows on) alike."""
    array = repeat(value, kind, n)
    assert array.type == kind
    assert array.to_pylist() == [value] * n
