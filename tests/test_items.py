"""Typed decoding of in_network items (mrfbatch.items): the typed path gives the general
path's rows and counts, and items of other shapes leave it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mrfbatch.tables import Quality

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
    bundled = {  # USUAL_ITEM's one bundled code: the members it lacks are null
        "billing_code_type": "CPT",
        "billing_code_type_version": None,
        "billing_code": "99000",
        "description": None,
    }
    assert columns["bundled_codes"] == [[bundled]] * 3  # type: ignore[index]


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
