"""Small pieces: network ids, URL redaction, whitelists, group keys, value coercion."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mrfbatch.errors import WhitelistError
from mrfbatch.network_ids import derive_network_id, redact_url
from mrfbatch.rows import Quality, group_key, inline_key, number, parse_groups
from mrfbatch.whitelist import load_whitelist


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://cdn.example/a/2024-01_BCBS_in-network.json.gz?Signature=x&Expires=1",
            "2024-01_BCBS_in-network",
        ),
        ("https://cdn.example/files/rates.JSON.GZ", "rates"),
        ("https://cdn.example/files/rates.zip", "rates"),
        ("file:///data/x/plan%20a.json", "plan_a"),
        ("/data/x/plan.json", "plan"),
        ("relative/dir/plan.v2.json.gz", "plan.v2"),
        ("https://cdn.example/", "network"),
    ],
)
def test_derive_network_id_uses_file_name(url: str, expected: str) -> None:
    assert derive_network_id(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://h.example/f.json.gz?X-Amz-Signature=abc&X-Amz-Credential=k",
            "https://h.example/f.json.gz",
        ),
        ("https://user:pw@h.example:8443/f.json#frag", "https://h.example:8443/f.json"),
        ("/local/path.json?x=1", "/local/path.json"),
    ],
)
def test_redact_url_drops_secrets(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_load_whitelist_plain_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "codes.txt"
    path.write_text("# knee\n 27447 \n\nj1234  # drug\r\n99213\n", encoding="utf-8")
    assert load_whitelist(path) == {"27447", "J1234", "99213"}


def test_load_whitelist_csv_with_billing_code_column(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text(
        '\ufeffdescription,Billing_Code\nknee,27447\n"a, b",g0121\n,\n', encoding="utf-8"
    )
    assert load_whitelist(path) == {"27447", "G0121"}


def test_load_whitelist_iterable_normalizes() -> None:
    assert load_whitelist([" 99213", "j1234", ""]) == {"99213", "J1234"}


def test_load_whitelist_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError, match=r"whitelist file .*nope.txt does not exist"):
        load_whitelist(tmp_path / "nope.txt")


def test_load_whitelist_without_codes_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(WhitelistError, match=r"lists no billing codes"):
        load_whitelist(path)


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
