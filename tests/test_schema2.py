"""Schema 2.x parts that no CMS example file holds, in one small file written here.

FILE (version 2.0.0) has a DRG item with `severity_of_illness`, prices whose `service_code` is
`["CSTM-ALL"]` or `["CSTM-00"]`, a provider group with `"npi": [0]`, an EIN `tin` and a
`business_name`, a bundle whose second code has no description and a numeric
`billing_code_type_version`, and a capitation item whose covered code has no description.
Every expected row below was written by hand from FILE and docs/output.md; both engines must
give exactly these rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction


def _price(rate: float, billing_class: str, service_code: list[str]) -> dict[str, Any]:
    return {
        "negotiated_type": "negotiated",
        "negotiated_rate": rate,
        "expiration_date": "9999-12-31",
        "service_code": service_code,
        "billing_class": billing_class,
        "setting": "inpatient" if billing_class == "institutional" else "outpatient",
    }


FILE: dict[str, Any] = {
    "reporting_entity_name": "Schema Two Health",
    "reporting_entity_type": "health insurance issuer",
    "issuer_name": "Schema Two Health",
    "plan_name": "Two PPO",
    "plan_id_type": "hios",
    "plan_id": "22222",
    "plan_market_type": "group",
    "last_updated_on": "2026-11-01",
    "version": "2.0.0",
    "provider_references": [
        {
            "provider_group_id": 1,
            "network_name": ["Two Network"],
            "provider_groups": [
                {
                    "npi": [0],
                    "tin": {
                        "type": "ein",
                        "value": "12-3456789",
                        "business_name": "Lakeside Surgical LLC",
                    },
                }
            ],
        }
    ],
    "in_network": [
        {
            "negotiation_arrangement": "ffs",
            "name": "Major hip and knee joint replacement",
            "billing_code_type": "MS-DRG",
            "billing_code_type_version": "41",
            "billing_code": "470",
            "description": "Major hip and knee joint replacement or reattachment",
            "severity_of_illness": "major",
            "negotiated_rates": [
                {
                    "provider_references": [1],
                    "negotiated_prices": [_price(18000.0, "institutional", ["CSTM-ALL"])],
                }
            ],
        },
        {
            "negotiation_arrangement": "ffs",
            "name": "Office visit",
            "billing_code_type": "CPT",
            "billing_code_type_version": "2026",
            "billing_code": "99213",
            "description": "Established patient office visit",
            "negotiated_rates": [
                {
                    "provider_references": [1],
                    "negotiated_prices": [_price(95.5, "professional", ["CSTM-00"])],
                }
            ],
        },
        {
            "negotiation_arrangement": "bundle",
            "name": "Knee replacement bundle",
            "billing_code_type": "CSTM-ALL",
            "billing_code_type_version": "2026",
            "billing_code": "KNEE-01",
            "description": "Knee replacement, facility and surgeon",
            "bundled_codes": [
                {
                    "billing_code_type": "CPT",
                    "billing_code_type_version": "2026",
                    "billing_code": "27447",
                    "description": "Arthroplasty, knee",
                },
                {"billing_code_type": "RC", "billing_code_type_version": 1, "billing_code": "0360"},
            ],
            "negotiated_rates": [
                {
                    "provider_references": [1],
                    "negotiated_prices": [_price(30000.0, "institutional", ["CSTM-ALL"])],
                }
            ],
        },
        {
            "negotiation_arrangement": "capitation",
            "name": "Primary care capitation",
            "billing_code_type": "CSTM-ALL",
            "billing_code_type_version": "2026",
            "billing_code": "CAP-01",
            "description": "Primary care per member per month",
            "covered_services": [
                {
                    "billing_code_type": "CPT",
                    "billing_code_type_version": "2026",
                    "billing_code": "99213",
                }
            ],
            "negotiated_rates": [
                {
                    "provider_references": [1],
                    "negotiated_prices": [_price(42.0, "professional", ["CSTM-00"])],
                }
            ],
        },
    ],
}


def _row(
    code_type: str,
    code: str,
    arrangement: str,
    name: str,
    description: str,
    rate: float,
    billing_class: str,
    setting: str,
    service_code: list[str],
    **item: Any,
) -> dict[str, Any]:
    """One expected rates row; `item` gives the version (default "2026"), severity and codes."""
    return {
        "network_id": "two",
        "billing_code_type": code_type,
        "billing_code_type_version": item.get("version", "2026"),
        "billing_code": code,
        "negotiation_arrangement": arrangement,
        "name": name,
        "description": description,
        "negotiated_type": "negotiated",
        "negotiated_rate": rate,
        "expiration_date": "9999-12-31",
        "billing_class": billing_class,
        "setting": setting,
        "service_code": service_code,
        "billing_code_modifier": None,
        "additional_information": None,
        "severity_of_illness": item.get("severity"),
        "bundled_codes": item.get("bundled_codes"),
        "covered_services": item.get("covered_services"),
        "provider_group_ids": ["1"],
    }


DRG_ROW = _row(
    "MS-DRG", "470", "ffs", "Major hip and knee joint replacement",
    "Major hip and knee joint replacement or reattachment", 18000.0, "institutional",
    "inpatient", ["CSTM-ALL"], version="41", severity="major",
)  # fmt: skip
OFFICE_ROW = _row(
    "CPT", "99213", "ffs", "Office visit", "Established patient office visit", 95.5,
    "professional", "outpatient", ["CSTM-00"],
)  # fmt: skip
BUNDLE_CODES = [
    {
        "billing_code_type": "CPT",
        "billing_code_type_version": "2026",
        "billing_code": "27447",
        "description": "Arthroplasty, knee",
    },
    {  # the version was the number 1; no description
        "billing_code_type": "RC",
        "billing_code_type_version": "1",
        "billing_code": "0360",
        "description": None,
    },
]
BUNDLE_ROW = _row(
    "CSTM-ALL", "KNEE-01", "bundle", "Knee replacement bundle",
    "Knee replacement, facility and surgeon", 30000.0, "institutional", "inpatient",
    ["CSTM-ALL"], bundled_codes=BUNDLE_CODES,
)  # fmt: skip
CAPITATION_ROW = _row(
    "CSTM-ALL", "CAP-01", "capitation", "Primary care capitation",
    "Primary care per member per month", 42.0, "professional", "outpatient", ["CSTM-00"],
    covered_services=[
        {"billing_code_type": "CPT", "billing_code_type_version": "2026",
         "billing_code": "99213", "description": None}
    ],
)  # fmt: skip
PROVIDER_ROW = {
    "network_id": "two",
    "provider_group_id": "1",
    "npi": 0,
    "tin_type": "ein",
    "tin_value": "12-3456789",
    "business_name": "Lakeside Surgical LLC",
    "network_name": ["Two Network"],
    "source": "file",
}


@pytest.fixture(scope="module", params=["fast", "reference"])
def extracted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of FILE's extraction by one engine; its status said success."""
    work = tmp_path_factory.mktemp(f"schema2-{request.param}")
    source = work / "two.json"
    source.write_text(json.dumps(FILE), encoding="utf-8")
    result = run_extraction(
        str(source), str(work / "out"), ExtractionOptions(engine=request.param), network_id="two"
    )
    assert result.status == "success", result.error
    return work / "out" / "two"


def _rates(folder: Path) -> dict[str, dict[str, Any]]:
    """The rates rows by billing code (FILE has one price per item)."""
    rows = pq.read_table(folder / "rates.parquet").to_pylist()
    by_code = {row["billing_code"]: row for row in rows}
    assert len(by_code) == len(rows) == 4
    return by_code


def test_severity_of_illness_goes_to_its_column(extracted: Path) -> None:
    rates = _rates(extracted)
    assert rates["470"] == DRG_ROW
    assert [rates[c]["severity_of_illness"] for c in ("99213", "KNEE-01")] == [None, None]


def test_custom_service_codes_are_kept_as_given(extracted: Path) -> None:
    rates = _rates(extracted)
    assert rates["99213"] == OFFICE_ROW
    assert {code: row["service_code"] for code, row in rates.items()} == {
        "470": ["CSTM-ALL"],
        "99213": ["CSTM-00"],
        "KNEE-01": ["CSTM-ALL"],
        "CAP-01": ["CSTM-00"],
    }


def test_npi_0_group_with_an_ein_and_business_name_is_one_provider_row(extracted: Path) -> None:
    assert pq.read_table(extracted / "providers.parquet").to_pylist() == [PROVIDER_ROW]


def test_bundled_code_without_description_and_numeric_version(extracted: Path) -> None:
    rates = _rates(extracted)
    assert rates["KNEE-01"] == BUNDLE_ROW
    assert rates["CAP-01"] == CAPITATION_ROW


def test_the_file_has_nothing_unknown_or_invalid(extracted: Path) -> None:
    status = json.loads((extracted / "status.json").read_text(encoding="utf-8"))
    counts = ("items_seen", "items_matched", "rate_rows", "provider_rows")
    assert [status[key] for key in counts] == [4, 4, 4, 1]
    assert (status["unknown_keys"], status["invalid_values"]) == (0, 0)
    assert status["file_metadata"]["version"] == "2.0.0"
