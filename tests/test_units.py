"""Small pieces: network ids, URL redaction, group keys, value coercion."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mrfbatch import workflow
from mrfbatch.errors import UsageError
from mrfbatch.network_ids import derive_network_id
from mrfbatch.redact import redact_url
from mrfbatch.tables import Quality, group_key, inline_key, number, parse_groups


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


# An item of the usual shape (every field typed as the schema says) and variants of it that
# are not: each variant must leave the typed path and give the general path's rows and counts.
USUAL_ITEM = {
    "negotiation_arrangement": "ffs",
    "name": "Office visit",
    "billing_code_type": "CPT",
    "billing_code_type_version": "2024",
    "billing_code": "99213",
    "description": "Established patient",
    "bundled_codes": [{"billing_code_type": "CPT", "billing_code": "99000"}],
    "negotiated_rates": [
        {
            "provider_references": [3, 690.64470, 1e5],
            "negotiated_prices": [
                {
                    "negotiated_type": "negotiated",
                    "negotiated_rate": 75,
                    "expiration_date": "9999-12-31",
                    "billing_class": "professional",
                    "service_code": ["11", "22"],
                    "billing_code_modifier": [],
                },
                {"negotiated_type": "fee schedule", "negotiated_rate": 0.1},
            ],
        },
        {
            "provider_groups": [{"npi": [1234567893], "tin": {"type": "ein", "value": "1"}}],
            "negotiated_prices": [{"negotiated_type": "derived", "negotiated_rate": 1.5e2}],
        },
        {"negotiated_prices": []},
    ],
}
UNUSUAL_CHANGES: list[tuple[str, tuple[str, ...], object]] = [
    ("unknown key", ("surprise",), 1),
    (
        "numeric rate as text",
        ("negotiated_rates", 0, "negotiated_prices", 0, "negotiated_rate"),
        "75.5",
    ),
    (
        "service code not a list",
        ("negotiated_rates", 0, "negotiated_prices", 0, "service_code"),
        "11",
    ),
    ("name as a number", ("name",), 12),
    ("unknown price key", ("negotiated_rates", 1, "negotiated_prices", 0, "note"), "x"),
    ("bundled code as a number", ("bundled_codes", 0, "billing_code"), 99000),
    ("rates not a list", ("negotiated_rates",), {"a": 1}),
    ("rates a string", ("negotiated_rates",), "[]"),
    ("the last rate odd", ("negotiated_rates", 2, "negotiated_prices"), {}),
    ("a rate not an object", ("negotiated_rates", 1), [1]),
]


def _item_json(item: object) -> bytes:
    # The literal spellings matter (690.64470 keeps its trailing zero): write floats by hand.
    import json

    return json.dumps(item).replace("690.6447", "690.64470").encode()


def _both_ways(raw: bytes) -> tuple[object, tuple[object, ...], tuple[object, ...]]:
    """(what decode_item gives, the general path's columns + counts, the chosen path's)."""
    import msgspec

    from mrfbatch.items import LargeItem, TypedItem, decode_item
    from mrfbatch.rates import ItemRows
    from mrfbatch.tables import RATES_SCHEMA

    general_quality = Quality()
    general_inline: dict[str, object] = {}
    general = ItemRows("net", general_quality, general_inline.__setitem__)
    columns, n = general.columns(msgspec.json.Decoder(float_hook=Decimal).decode(raw))
    expected = (columns, n, general.referenced, general_inline, general_quality)
    decoded = decode_item(raw)
    quality = Quality()
    inline: dict[str, object] = {}
    rows = ItemRows("net", quality, inline.__setitem__)
    if isinstance(decoded, TypedItem | LargeItem):
        columns, n = {}, 0
        for batch in rows.typed_batches(decoded):
            assert batch.schema == RATES_SCHEMA
            for name, values in batch.to_pydict().items():
                columns.setdefault(name, []).extend(values)
            n += batch.num_rows
    else:
        columns, n = rows.columns(decoded)  # type: ignore[arg-type]
    return decoded, expected, (columns, n, rows.referenced, inline, quality)


@pytest.fixture(params=["whole", "large"])
def large(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Items decoded whole, or as LargeItems (rates decoded as read), one rate per batch."""
    from mrfbatch import items, rates

    if request.param == "large":
        monkeypatch.setattr(items, "LARGE_ITEM_BYTES", 0)
        monkeypatch.setattr(rates, "ROWS_PER_BATCH", 1)
    return bool(request.param == "large")


def test_typed_item_rows_equal_general_rows(large: bool) -> None:
    from mrfbatch.items import LargeItem, TypedItem

    decoded, expected, got = _both_ways(_item_json(USUAL_ITEM))
    assert isinstance(decoded, LargeItem if large else TypedItem)
    assert got == expected
    columns, n = got[0], got[1]
    assert n == 3  # two prices in the first rate, one in the second, none in the third
    assert columns["negotiated_rate"] == [75.0, 0.1, 150.0]  # type: ignore[index]
    assert columns["provider_group_ids"][0][:3] == [
        "3",
        "690.64470",
        "100000.0",
    ]  # the exact text json.dumps wrote  # type: ignore[index]
    assert columns["bundled_codes"] == [["CPT:99000"]] * 3  # type: ignore[index]


@pytest.mark.parametrize(
    "references",
    [
        [3, "a7", 690.64470, 1e5],
        ["a7"],
        [],
        None,  # (null)
        7,  # not in a list
        "a7",
        [True, 3],  # counted as invalid
        [None, 3],
        [{"x": 1}, 3],
        [3, [4]],
    ],
    ids=repr,
)
@pytest.mark.parametrize("inline", [True, False], ids=["with inline groups", "references only"])
def test_typed_item_rows_equal_general_rows_whatever_the_references(
    references: object, inline: bool, large: bool
) -> None:
    """The typed path reads a batch's provider_references in a few calls when they are lists
    of numbers and strings and no rate has inline groups, else rate by rate."""
    import copy

    from mrfbatch.items import LargeItem, TypedItem

    item = copy.deepcopy(USUAL_ITEM)
    rates = item["negotiated_rates"]
    rates[0]["provider_references"] = references  # type: ignore[index]
    if not inline:
        del rates[1]  # type: ignore[attr-defined]
    decoded, expected, got = _both_ways(_item_json(item))
    assert isinstance(decoded, TypedItem | LargeItem)
    assert got == expected


@pytest.mark.parametrize(
    ("what", "path", "value"), UNUSUAL_CHANGES, ids=[c[0] for c in UNUSUAL_CHANGES]
)
def test_items_of_other_shapes_take_the_general_path(
    what: str, path: tuple[str, ...], value: object, large: bool
) -> None:
    import copy

    from mrfbatch.items import LargeItem, TypedItem

    item = copy.deepcopy(USUAL_ITEM)
    target: object = item
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    decoded, expected, got = _both_ways(_item_json(item))
    assert not isinstance(decoded, TypedItem | LargeItem), what
    assert got == expected


class _RecordingRaw(io.RawIOBase):
    """A file descriptor's view of the console: every write that reaches the OS."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_console_lines_reach_the_os_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # Jobs running at once share the console: a line written in two pieces can be split by
    # another job's line. Like Python's own stderr, the stream has no buffer of bytes.
    raw = _RecordingRaw()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # type: ignore[type-var]
    monkeypatch.setattr(sys, "stderr", stream)
    workflow._say("[mrfbatch] beta: success")
    assert raw.writes == [b"[mrfbatch] beta: success\n"]


def test_find_task_unknown_network_id_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    path.write_text(
        "network_id\turl\toutput_prefix\tplan_metadata\textra_args\n"
        "alpha\thttps://h.example/alpha.json\tresults/alpha\t[]\t{}\n"
    )
    assert workflow.find_task(str(path), "alpha").url == "https://h.example/alpha.json"
    with pytest.raises(UsageError, match=r"network id 'beta' is not in .*tasks\.tsv"):
        workflow.find_task(str(path), "beta")
