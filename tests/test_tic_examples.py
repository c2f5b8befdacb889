"""End-to-end tests of ``run_extraction`` on the CMS / real example files in shared/tic-examples.

Every expected value below was written by hand from reading the example JSON files and
docs/output.md; none was produced by running the code. The example files are located by the
``tic_examples`` fixture: ``$MRFBATCH_TIC_EXAMPLES`` if set, else ``../shared/tic-examples``
beside the repository. Tests that need them are skipped when the folder is absent.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction

# ---------------------------------------------------------------------------------------------
# Locating the example files
# ---------------------------------------------------------------------------------------------


# The keywords of ExtractionOptions a test may give with the others.
OPTIONS = {field.name for field in dataclasses.fields(ExtractionOptions)}


@pytest.fixture(scope="session")
def tic_examples() -> Path:
    """The folder holding v1/, v2/, real/ and negative/ (skip when it is not there)."""
    override = os.environ.get("MRFBATCH_TIC_EXAMPLES")
    root = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2] / "shared" / "tic-examples"
    )
    if not root.is_dir():
        pytest.skip(
            f"TiC example files not found at {root}: they live in the shared folder beside the "
            "repository (or set MRFBATCH_TIC_EXAMPLES to their folder)"
        )
    return root


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Make every socket look-up or connection fail, and record the attempts."""
    attempts: list[tuple[Any, ...]] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


# ---------------------------------------------------------------------------------------------
# The output contract (docs/output.md)
# ---------------------------------------------------------------------------------------------

STRING, FLOAT, INT, LIST = "string", "float64", "int64", "list<string>"
CODES = "list<struct<billing_code_type, billing_code_type_version, billing_code, description>>"
CODE_MEMBERS = ["billing_code_type", "billing_code_type_version", "billing_code", "description"]

RATE_COLUMNS = {
    "network_id": STRING,
    "billing_code_type": STRING,
    "billing_code_type_version": STRING,
    "billing_code": STRING,
    "negotiation_arrangement": STRING,
    "name": STRING,
    "description": STRING,
    "negotiated_type": STRING,
    "negotiated_rate": FLOAT,
    "expiration_date": STRING,
    "billing_class": STRING,
    "setting": STRING,
    "service_code": LIST,
    "billing_code_modifier": LIST,
    "additional_information": STRING,
    "severity_of_illness": STRING,
    "bundled_codes": CODES,
    "covered_services": CODES,
    "provider_group_ids": LIST,
}

PROVIDER_COLUMNS = {
    "network_id": STRING,
    "provider_group_id": STRING,
    "npi": INT,
    "tin_type": STRING,
    "tin_value": STRING,
    "business_name": STRING,
    "network_name": LIST,
    "source": STRING,
}

STATUS_KEYS = {
    "network_id",
    "url",
    "status",
    "error",
    "engine",
    "started_at",
    "finished_at",
    "duration_seconds",
    "bytes_read",
    "bytes_decoded",
    "compression",
    "retries",
    "resumes",
    "restarts",
    "items_seen",
    "items_matched",
    "rate_rows",
    "provider_rows",
    "unresolved_references",
    "remote_references_fetched",
    "remote_references_failed",
    "unknown_keys",
    "unknown_key_names",
    "invalid_values",
    "warnings",
    "file_metadata",
    "plan_metadata",
    "whitelist_size",
    "output_files",
}

INLINE_KEY = re.compile(r"inline-[0-9a-fA-F]{16}")


def _type_matches(arrow_type: pa.DataType, kind: str) -> bool:
    if kind == STRING:
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind == FLOAT:
        return pa.types.is_float64(arrow_type)
    if kind == INT:
        return pa.types.is_int64(arrow_type)
    if kind == CODES:  # a list of structs of four strings, in this order
        if not pa.types.is_list(arrow_type) or not pa.types.is_struct(arrow_type.value_type):
            return False
        members = list(arrow_type.value_type)
        return [f.name for f in members] == CODE_MEMBERS and all(
            _type_matches(f.type, STRING) for f in members
        )
    return (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)) and (
        _type_matches(arrow_type.value_type, STRING)
    )


# ---------------------------------------------------------------------------------------------
# Helpers to write expected rows compactly (values are still typed in by hand)
# ---------------------------------------------------------------------------------------------

NPIS_1_TO_5 = [1111111111, 2222222222, 3333333333, 4444444444, 5555555555]
NPIS_6_TO_9 = [6666666666, 7777777777, 8888888888, 9999999999]

KNEE_DESC = "Arthroplasty, knee condyle and plateau, medial and lateral compartments"
FEMUR_DESC = (
    "Under Repair, Revision, and/or Reconstruction Procedures on the Femur (Thigh Region) "
    "and Knee Joint"
)
# The bundle and capitation samples (v1 and v2) list the same two codes, with one description.
KNEE_BUNDLE = [
    {"billing_code_type": "CPT", "billing_code_type_version": "2020", "billing_code": code,
     "description": FEMUR_DESC}
    for code in ("27447", "27446")
]  # fmt: skip


def _item(
    code_type: str,
    version: str,
    code: str,
    arrangement: str,
    name: str,
    description: str,
    *,
    bundled_codes: list[dict[str, str | None]] | None = None,
    covered_services: list[dict[str, str | None]] | None = None,
) -> dict[str, Any]:
    """The item-level columns of a rates row."""
    return {
        "billing_code_type": code_type,
        "billing_code_type_version": version,
        "billing_code": code,
        "negotiation_arrangement": arrangement,
        "name": name,
        "description": description,
        "severity_of_illness": None,
        "bundled_codes": bundled_codes,
        "covered_services": covered_services,
    }


def _rate(
    item: dict[str, Any],
    negotiated_type: str,
    negotiated_rate: float,
    expiration_date: str,
    billing_class: str,
    groups: list[str],
    *,
    setting: str | None = None,
    service_code: list[str] | None = None,
    billing_code_modifier: list[str] | None = None,
    additional_information: str | None = None,
) -> dict[str, Any]:
    """One expected rates row (without network_id). ``inline:X`` in groups names an inline group."""
    return {
        **item,
        "negotiated_type": negotiated_type,
        "negotiated_rate": negotiated_rate,
        "expiration_date": expiration_date,
        "billing_class": billing_class,
        "setting": setting,
        "service_code": service_code,
        "billing_code_modifier": billing_code_modifier,
        "additional_information": additional_information,
        "provider_group_ids": groups,
    }


def _providers(
    group: str,
    tin_type: str,
    tin_value: str,
    npis: list[int],
    *,
    source: str,
    business_name: str | None = None,
    network_name: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Expected providers rows (without network_id) of one provider_groups entry."""
    return [
        {
            "provider_group_id": group,
            "npi": npi,
            "tin_type": tin_type,
            "tin_value": tin_value,
            "business_name": business_name,
            "network_name": network_name,
            "source": source,
        }
        for npi in npis
    ]


def _metadata(
    entity: str,
    entity_type: str,
    last_updated_on: str,
    version: str,
    *,
    plan_name: str | None = None,
    plan_id_type: str | None = None,
    plan_id: str | None = None,
    plan_market_type: str | None = None,
    plan_sponsor_name: str | None = None,
    issuer_name: str | None = None,
) -> dict[str, Any]:
    return {
        "reporting_entity_name": entity,
        "reporting_entity_type": entity_type,
        "plan_name": plan_name,
        "plan_id_type": plan_id_type,
        "plan_id": plan_id,
        "plan_market_type": plan_market_type,
        "plan_sponsor_name": plan_sponsor_name,
        "issuer_name": issuer_name,
        "last_updated_on": last_updated_on,
        "version": version,
    }


# ---------------------------------------------------------------------------------------------
# Expected output of every in-network example
# ---------------------------------------------------------------------------------------------

# --- v1/in-network-rates-fee-for-service-single-plan-sample.json (version 1.2.0) ---
_V1_FFS_KNEE = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
_V1_FFS_FEMUR = _item("CPT", "2020", "27448", "ffs", "Femur and Knee Joint Repair", FEMUR_DESC)
V1_FFS_RATES = [
    _rate(_V1_FFS_KNEE, "negotiated", 123.45, "2022-01-01", "professional", ["inline:A"],
          service_code=["18", "19", "11"], billing_code_modifier=["AS"]),
    _rate(_V1_FFS_KNEE, "negotiated", 1230.45, "2022-01-01", "institutional", ["inline:A"]),
    _rate(_V1_FFS_KNEE, "negotiated", 120.45, "2022-01-01", "professional", ["inline:B"],
          service_code=["05", "06", "07"]),
    _rate(_V1_FFS_FEMUR, "negotiated", 12003.45, "2022-01-01", "professional", ["1"],
          service_code=["CSTM-00"]),
    _rate(_V1_FFS_FEMUR, "negotiated", 12.45, "2022-01-01", "institutional", ["inline:C"],
          service_code=["18", "19", "11"]),
]  # fmt: skip
V1_FFS_PROVIDERS = [
    # provider_references[0] (id 1); id 2 has only a `location` and no rate references it
    *_providers("1", "ein", "11-1111111", NPIS_1_TO_5, source="file"),
    *_providers("1", "ein", "22-2222222", NPIS_1_TO_5, source="file"),
    *_providers("inline:A", "ein", "11-1111111", NPIS_1_TO_5, source="inline"),
    *_providers("inline:A", "ein", "22-2222222", NPIS_1_TO_5, source="inline"),
    *_providers("inline:B", "ein", "22-2222222", NPIS_6_TO_9, source="inline"),
    *_providers("inline:C", "npi", "6666666666", [6666666666], source="inline"),
]
V1_FFS_METADATA = _metadata(
    "medicare", "medicare", "2020-08-27", "1.2.0",
    plan_name="medicaid", plan_id_type="hios", plan_id="1111111111", plan_market_type="individual",
)  # fmt: skip

# --- v1/in-network-rates-multiple-plans-sample.json (1.0.0, all provider groups inline) ---
_V1_MULTI_KNEE = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
_V1_MULTI_FEMUR = _item("CPT", "2020", "27448", "ffs", "Femur and Knee Joint Repair", FEMUR_DESC)
V1_MULTI_RATES = [
    _rate(_V1_MULTI_KNEE, "negotiated", 123.45, "2022-01-01", "professional", ["inline:A"],
          service_code=["18", "19", "11"], billing_code_modifier=["AS"]),
    _rate(_V1_MULTI_KNEE, "negotiated", 1230.45, "2022-01-01", "institutional", ["inline:A"]),
    _rate(_V1_MULTI_KNEE, "negotiated", 120.45, "2022-01-01", "professional", ["inline:B"],
          service_code=["05", "06", "07"]),
    _rate(_V1_MULTI_KNEE, "derived", 120.45, "2022-01-01", "both", ["inline:B"]),
    # the same inline list as the knee's first negotiated_rates entry: one key, one set of rows
    _rate(_V1_MULTI_FEMUR, "negotiated", 12003.45, "2022-01-01", "professional", ["inline:A"],
          service_code=["18", "19", "11"]),
    _rate(_V1_MULTI_FEMUR, "negotiated", 12.45, "2022-01-01", "institutional", ["inline:C"],
          service_code=["18", "19", "11"]),
]  # fmt: skip
V1_MULTI_PROVIDERS = [
    *_providers("inline:A", "ein", "11-1111111", NPIS_1_TO_5, source="inline"),
    *_providers("inline:A", "ein", "22-2222222", NPIS_1_TO_5, source="inline"),
    *_providers("inline:B", "ein", "22-2222222", NPIS_6_TO_9, source="inline"),
    *_providers("inline:C", "npi", "6666666666", [6666666666], source="inline"),
]
V1_MULTI_METADATA = _metadata("cms", "cms", "2020-08-27", "1.0.0")

# --- v1/in-network-rates-bundle-single-plan-sample.json ---
_V1_BUNDLE = _item("ICD", "9", "81.54", "bundle", "Total Knee Replacement",
                   "Total Knee Replacement", bundled_codes=KNEE_BUNDLE)  # fmt: skip
V1_BUNDLE_RATES = [
    _rate(_V1_BUNDLE, "negotiated", 20000.0, "2022-01-01", "professional", ["inline:A"],
          service_code=["05", "06", "07"]),
    _rate(_V1_BUNDLE, "negotiated", 25000.0, "2022-01-01", "professional", ["inline:E"],
          service_code=["05", "06", "07"]),
]  # fmt: skip
V1_BUNDLE_PROVIDERS = [
    *_providers("inline:A", "ein", "11-1111111", NPIS_1_TO_5, source="inline"),
    *_providers("inline:A", "ein", "22-2222222", NPIS_1_TO_5, source="inline"),
    *_providers("inline:E", "npi", "6666666666", NPIS_6_TO_9, source="inline"),
]
V1_BUNDLE_METADATA = _metadata(
    "cms", "cms", "2020-08-27", "1.0.0",
    plan_name="medicare", plan_id_type="hios", plan_id="0000000000", plan_market_type="individual",
)  # fmt: skip

# --- v1/in-network-rates-capitation-single-plan-sample.json ---
_V1_CAP = _item("CPT", "2020", "27447", "capitation", "Primary Care Capitation",
                "Typical items and services for a primary care provider",
                covered_services=KNEE_BUNDLE)  # fmt: skip
V1_CAP_RATES = [
    _rate(_V1_CAP, "negotiated", 20000.0, "2022-01-01", "institutional", ["inline:A"]),
    _rate(_V1_CAP, "negotiated", 25000.0, "2022-01-01", "professional", ["inline:B"],
          service_code=["05", "06", "07"]),
]  # fmt: skip
V1_CAP_PROVIDERS = [
    *_providers("inline:A", "ein", "11-1111111", NPIS_1_TO_5, source="inline"),
    *_providers("inline:A", "ein", "22-2222222", NPIS_1_TO_5, source="inline"),
    *_providers("inline:B", "ein", "22-2222222", NPIS_6_TO_9, source="inline"),
]
V1_CAP_METADATA = _metadata(
    "cms", "cms", "2020-08-27", "1.0.0",
    plan_name="medicaid", plan_id_type="hios", plan_id="1111111111", plan_market_type="individual",
)  # fmt: skip

# --- v1/in-network-rates-no-npi.json (`"npi": [0]`) ---
_V1_NONPI = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
V1_NONPI_RATES = [
    _rate(_V1_NONPI, "negotiated", 123.45, "2022-01-01", "institutional", ["inline:T"]),
]
V1_NONPI_PROVIDERS = _providers("inline:T", "ein", "11-1111111", [0], source="inline")
V1_NONPI_METADATA = _metadata(
    "medicare", "medicare", "2020-08-27", "1.0.0",
    plan_name="medicaid", plan_id_type="hios", plan_id="1111111111", plan_market_type="individual",
)  # fmt: skip

# --- v2 provider references shared by the ffs, multiple-plans, bundle and capitation samples ---
# (their group 2, "ACME Choice Provider Group Plus", is referenced by no rate)
V2_ACME_GROUP_1 = [
    *_providers("1", "ein", "11-1111111", NPIS_1_TO_5, source="file",
                business_name="ACME Provider Group", network_name=["ACME Choice Provider Group"]),
    *_providers("1", "ein", "22-2222222", NPIS_1_TO_5, source="file",
                business_name="Midland Medical Group",
                network_name=["ACME Choice Provider Group"]),
]  # fmt: skip

# --- v2/in-network-rates-fee-for-service-single-plan-sample.json ---
_V2_FFS_KNEE = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
_V2_FFS_FEMUR = _item("CPT", "2020", "27448", "ffs", "Femur and Knee Joint Repair", FEMUR_DESC)
V2_FFS_RATES = [
    _rate(_V2_FFS_KNEE, "negotiated", 123.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["18", "19", "11"], billing_code_modifier=["AS"]),
    _rate(_V2_FFS_KNEE, "negotiated", 1230.45, "2022-01-01", "institutional", ["1"],
          setting="inpatient"),
    _rate(_V2_FFS_KNEE, "negotiated", 120.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["05", "06", "07"]),
    _rate(_V2_FFS_FEMUR, "negotiated", 12003.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["CSTM-00"]),
    _rate(_V2_FFS_FEMUR, "negotiated", 12.45, "2022-01-01", "institutional", ["1"],
          setting="inpatient", service_code=["18", "19", "11"]),
]  # fmt: skip
V2_FFS_METADATA = _metadata(
    "medicare", "medicare", "2020-08-27", "2.0.0",
    plan_name="Plan A PPO", plan_id_type="ein", plan_id="1111111111", plan_market_type="group",
    plan_sponsor_name="ACME small auto shop", issuer_name="ACME Issuer",
)  # fmt: skip

# --- v2/in-network-rates-multiple-plans-sample.json ---
_V2_MULTI_KNEE = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
_V2_MULTI_FEMUR = _item("CPT", "2020", "27448", "ffs", "Femur and Knee Joint Repair", FEMUR_DESC)
V2_MULTI_RATES = [
    _rate(_V2_MULTI_KNEE, "negotiated", 123.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["18", "19", "11"], billing_code_modifier=["AS"]),
    _rate(_V2_MULTI_KNEE, "negotiated", 1230.45, "2022-01-01", "institutional", ["1"],
          setting="inpatient"),
    _rate(_V2_MULTI_KNEE, "negotiated", 120.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["05", "06", "07"]),
    _rate(_V2_MULTI_KNEE, "derived", 120.45, "2022-01-01", "both", ["1"], setting="inpatient"),
    _rate(_V2_MULTI_FEMUR, "negotiated", 12003.45, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["18", "19", "11"]),
    _rate(_V2_MULTI_FEMUR, "negotiated", 12.45, "2022-01-01", "institutional", ["1"],
          setting="inpatient", service_code=["18", "19", "11"]),
]  # fmt: skip
V2_MULTI_METADATA = _metadata("cms", "cms", "2020-08-27", "2.0.0")

# --- v2/in-network-rates-bundle-single-plan-sample.json ---
_V2_BUNDLE = _item("ICD", "9", "81.54", "bundle", "Total Knee Replacement",
                   "Total Knee Replacement", bundled_codes=KNEE_BUNDLE)  # fmt: skip
V2_BUNDLE_RATES = [
    _rate(_V2_BUNDLE, "negotiated", 20000.0, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["05", "06", "07"]),
    _rate(_V2_BUNDLE, "negotiated", 25000.0, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["05", "06", "07"]),
]  # fmt: skip
V2_BUNDLE_METADATA = _metadata(
    "cms", "cms", "2020-08-27", "2.0.0",
    plan_name="medicare", plan_id_type="hios", plan_id="0000000000", plan_market_type="individual",
    issuer_name="ACME Issuer",
)  # fmt: skip

# --- v2/in-network-rates-capitation-single-plan-sample.json ---
_V2_CAP = _item("CPT", "2020", "27447", "capitation", "Primary Care Capitation",
                "Typical items and services for a primary care provider",
                covered_services=KNEE_BUNDLE)  # fmt: skip
V2_CAP_RATES = [
    _rate(_V2_CAP, "negotiated", 20000.0, "2022-01-01", "institutional", ["1"],
          setting="inpatient"),
    _rate(_V2_CAP, "negotiated", 25000.0, "2022-01-01", "professional", ["1"],
          setting="inpatient", service_code=["05", "06", "07"]),
]  # fmt: skip
V2_CAP_METADATA = _metadata(
    "cms", "cms", "2020-08-27", "2.0.0",
    plan_name="medicaid", plan_id_type="hios", plan_id="1111111111", plan_market_type="individual",
    issuer_name="CMS Medicaid Issuer",
)  # fmt: skip

# --- v2/in-network-rates-no-npi.json (despite its name it lists NPI 1111111111) ---
_V2_NONPI = _item("CPT", "2020", "27447", "ffs", "Knee Replacement", KNEE_DESC)
V2_NONPI_RATES = [
    _rate(_V2_NONPI, "negotiated", 123.45, "2022-01-01", "institutional", ["1"],
          setting="inpatient"),
]  # fmt: skip
V2_NONPI_PROVIDERS = _providers("1", "npi", "1234567890", [1111111111], source="file",
                                network_name=["ACME Choice Provider Group"])  # fmt: skip
V2_NONPI_METADATA = _metadata(
    "medicare", "medicare", "2020-08-27", "2.0.0",
    plan_name="medicaid", plan_id_type="ein", plan_id="1111111111", plan_market_type="individual",
    plan_sponsor_name="plan sponsor", issuer_name="ACME Issuer",
)  # fmt: skip

# --- v2/in-network-rates-all-negotiated-types-sample.json ---
_ALL_99214 = _item("CPT", "2024", "99214", "ffs",
                   "Office Visit, Established Patient, Moderate Complexity",
                   "Office or other outpatient visit for evaluation and management of an "
                   "established patient")  # fmt: skip
_ALL_97110 = _item("CPT", "2024", "97110", "ffs", "Outpatient Physical Therapy",
                   "Therapeutic exercises to develop strength, endurance, range of motion and "
                   "flexibility")  # fmt: skip
_ALL_0200 = _item("RC", "2024", "0200", "ffs",
                  "Medical/Surgical Intensive Care Unit (ICU) Daily Rate",
                  "Intensive Care Unit - General Classification")  # fmt: skip
_ALL_80053 = _item("CPT", "2024", "80053", "ffs",
                   "Laboratory Test - Comprehensive Metabolic Panel",
                   "Comprehensive metabolic panel blood test")  # fmt: skip
_ALL_27447 = _item("CPT", "2024", "27447", "ffs", "Knee Replacement Surgery", KNEE_DESC)
_ALL_99285 = _item("CPT", "2024", "99285", "ffs", "Emergency Department Visit, High Severity",
                   "Emergency department visit for evaluation and management of a patient with "
                   "high severity")  # fmt: skip
ALL_RATES_99214 = [
    _rate(_ALL_99214, "negotiated", 150.0, "2024-12-31", "professional", ["1"],
          setting="outpatient", service_code=["11"],
          additional_information="Standard negotiated rate for established patient office visits"),
]  # fmt: skip
ALL_RATES_97110 = [
    _rate(_ALL_97110, "percentage", 65.0, "2024-12-31", "professional", ["1"],
          setting="outpatient", service_code=["11", "22"],
          additional_information="65% of billed charges arrangement"),
]  # fmt: skip
ALL_RATES_0200 = [
    _rate(_ALL_0200, "per diem", 5500.0, "2024-12-31", "institutional", ["2"],
          setting="inpatient", additional_information="Daily per diem rate for ICU stay"),
]  # fmt: skip
ALL_RATES_80053 = [
    _rate(_ALL_80053, "derived", 45.0, "2024-12-31", "professional", ["1"],
          setting="outpatient", service_code=["11", "81"],
          additional_information="Derived price for internal accounting and reconciliation "
          "purposes"),
]  # fmt: skip
ALL_RATES_27447 = [
    _rate(_ALL_27447, "fee schedule", 8500.0, "2024-12-31", "professional", ["1", "2"],
          setting="inpatient", service_code=["21", "22"],
          additional_information="Fee schedule rate used to determine participant cost-sharing "
          "liability"),
    _rate(_ALL_27447, "negotiated", 12000.0, "2024-12-31", "institutional", ["1", "2"],
          setting="inpatient"),
]  # fmt: skip
ALL_RATES_99285 = [
    _rate(_ALL_99285, "percentage", 75.5, "2024-12-31", "professional", ["2"],
          setting="outpatient", service_code=["23"]),
    _rate(_ALL_99285, "negotiated", 2500.0, "2024-12-31", "institutional", ["2"],
          setting="outpatient"),
]  # fmt: skip
ALL_RATES = [
    *ALL_RATES_99214,
    *ALL_RATES_97110,
    *ALL_RATES_0200,
    *ALL_RATES_80053,
    *ALL_RATES_27447,
    *ALL_RATES_99285,
]
ALL_GROUP_1 = [
    *_providers("1", "ein", "12-3456789", [1234567890, 2345678901, 3456789012], source="file",
                business_name="Premier Medical Associates",
                network_name=["Comprehensive Health Network"]),
    *_providers("1", "ein", "23-4567890", [4567890123], source="file",
                business_name="Regional Healthcare Group",
                network_name=["Comprehensive Health Network"]),
]  # fmt: skip
ALL_GROUP_2 = _providers("2", "ein", "34-5678901", [5678901234, 6789012345], source="file",
                         business_name="City General Hospital",
                         network_name=["Comprehensive Health Plus Network"])  # fmt: skip
ALL_METADATA = _metadata(
    "Comprehensive Health Insurance", "health insurance issuer", "2024-01-15", "2.0.0",
    plan_name="Plan D PPO", plan_id_type="ein", plan_id="4444444444", plan_market_type="group",
    plan_sponsor_name="Comprehensive Employee Group", issuer_name="Comprehensive Health Issuer",
)  # fmt: skip


# (file, items in in_network, rates rows, providers rows, file_metadata)
EXAMPLES = {
    "v1/in-network-rates-fee-for-service-single-plan-sample.json": (
        2, V1_FFS_RATES, V1_FFS_PROVIDERS, V1_FFS_METADATA),
    "v1/in-network-rates-multiple-plans-sample.json": (
        2, V1_MULTI_RATES, V1_MULTI_PROVIDERS, V1_MULTI_METADATA),
    "v1/in-network-rates-bundle-single-plan-sample.json": (
        1, V1_BUNDLE_RATES, V1_BUNDLE_PROVIDERS, V1_BUNDLE_METADATA),
    "v1/in-network-rates-capitation-single-plan-sample.json": (
        1, V1_CAP_RATES, V1_CAP_PROVIDERS, V1_CAP_METADATA),
    "v1/in-network-rates-no-npi.json": (1, V1_NONPI_RATES, V1_NONPI_PROVIDERS, V1_NONPI_METADATA),
    "v2/in-network-rates-fee-for-service-single-plan-sample.json": (
        2, V2_FFS_RATES, V2_ACME_GROUP_1, V2_FFS_METADATA),
    "v2/in-network-rates-all-negotiated-types-sample.json": (
        6, ALL_RATES, [*ALL_GROUP_1, *ALL_GROUP_2], ALL_METADATA),
    "v2/in-network-rates-multiple-plans-sample.json": (
        2, V2_MULTI_RATES, V2_ACME_GROUP_1, V2_MULTI_METADATA),
    "v2/in-network-rates-bundle-single-plan-sample.json": (
        1, V2_BUNDLE_RATES, V2_ACME_GROUP_1, V2_BUNDLE_METADATA),
    "v2/in-network-rates-capitation-single-plan-sample.json": (
        1, V2_CAP_RATES, V2_ACME_GROUP_1, V2_CAP_METADATA),
    "v2/in-network-rates-no-npi.json": (1, V2_NONPI_RATES, V2_NONPI_PROVIDERS, V2_NONPI_METADATA),
}  # fmt: skip

# Hand-counted sizes, as a cross-check of the literal lists above.
EXPECTED_COUNTS = {
    "v1/in-network-rates-fee-for-service-single-plan-sample.json": (5, 25),
    "v1/in-network-rates-multiple-plans-sample.json": (6, 15),
    "v1/in-network-rates-bundle-single-plan-sample.json": (2, 14),
    "v1/in-network-rates-capitation-single-plan-sample.json": (2, 14),
    "v1/in-network-rates-no-npi.json": (1, 1),
    "v2/in-network-rates-fee-for-service-single-plan-sample.json": (5, 10),
    "v2/in-network-rates-all-negotiated-types-sample.json": (8, 6),
    "v2/in-network-rates-multiple-plans-sample.json": (6, 10),
    "v2/in-network-rates-bundle-single-plan-sample.json": (2, 10),
    "v2/in-network-rates-capitation-single-plan-sample.json": (2, 10),
    "v2/in-network-rates-no-npi.json": (1, 1),
}


# ---------------------------------------------------------------------------------------------
# Running and reading back
# ---------------------------------------------------------------------------------------------


def _network_id(path: Path) -> str:
    """The default network id: the file name without .json/.gz/.zip (hand-derived here)."""
    name = path.name
    for suffix in (".gz", ".zip", ".json"):
        name = name.removesuffix(suffix)
    return name


def _run(source: Path, output_dir: Path, **kwargs: Any) -> tuple[Any, dict[str, Any], Path]:
    """Run the extraction; return the result, the parsed status.json and the network folder."""
    options = ExtractionOptions(**{key: kwargs.pop(key) for key in OPTIONS & set(kwargs)})
    if "settings" in kwargs:
        options = options.replace(transport=kwargs.pop("settings"))
    result = run_extraction(str(source), str(output_dir), options, **kwargs)
    network_id = kwargs.get("network_id") or _network_id(source)
    folder = output_dir / network_id
    status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    return result, status, folder


def _rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def _content(rows: list[dict[str, Any]], group: str) -> frozenset[tuple[Any, ...]]:
    """What a provider group holds, without its key and network id."""
    return frozenset(
        (
            row["npi"],
            row["tin_type"],
            row["tin_value"],
            row["business_name"],
            tuple(row["network_name"]) if row["network_name"] is not None else None,
            row["source"],
        )
        for row in rows
        if row["provider_group_id"] == group
    )


def _resolve_inline_keys(
    expected_providers: list[dict[str, Any]],
    actual_providers: list[dict[str, Any]],
    actual_rates: list[dict[str, Any]],
) -> dict[str, str]:
    """Map each ``inline:X`` placeholder to the one actual inline key holding the same content."""
    actual_keys = {row["provider_group_id"] for row in actual_providers}
    for row in actual_rates:
        actual_keys.update(row["provider_group_ids"] or [])
    inline_keys = {key for key in actual_keys if key.startswith("inline-")}
    for key in inline_keys:
        assert INLINE_KEY.fullmatch(key), f"inline key {key!r} is not inline-<16 hex digits>"
    placeholders = {
        row["provider_group_id"]
        for row in expected_providers
        if row["provider_group_id"].startswith("inline:")
    }
    mapping: dict[str, str] = {}
    for placeholder in sorted(placeholders):
        wanted = _content(expected_providers, placeholder)
        keys = sorted(key for key in inline_keys if _content(actual_providers, key) == wanted)
        assert len(keys) == 1, (
            f"expected exactly one inline key whose providers are {sorted(wanted)}; got {keys} "
            f"(all inline keys: {sorted(inline_keys)})"
        )
        mapping[placeholder] = keys[0]
    return mapping


def _substitute(
    rows: list[dict[str, Any]], mapping: dict[str, str], network_id: str
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        new = {"network_id": network_id, **row}
        if "provider_group_ids" in new:
            new["provider_group_ids"] = [mapping.get(g, g) for g in new["provider_group_ids"]]
        if "provider_group_id" in new:
            new["provider_group_id"] = mapping.get(
                new["provider_group_id"], new["provider_group_id"]
            )
        out.append(new)
    return out


def _assert_tables(
    folder: Path,
    network_id: str,
    expected_rates: list[dict[str, Any]],
    expected_providers: list[dict[str, Any]],
) -> None:
    rates = _rows(folder / "rates.parquet")
    providers = _rows(folder / "providers.parquet")
    mapping = _resolve_inline_keys(expected_providers, providers, rates)
    assert _sorted(rates) == _sorted(_substitute(expected_rates, mapping, network_id))
    assert _sorted(providers) == _sorted(_substitute(expected_providers, mapping, network_id))


# ---------------------------------------------------------------------------------------------
# 1. Every in-network example: exact rows, status counts and file metadata
# ---------------------------------------------------------------------------------------------

EXAMPLE_IDS = sorted(EXAMPLES)


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_expected_literals_have_hand_counted_sizes(relpath: str) -> None:
    _, rates, providers, _ = EXAMPLES[relpath]
    assert (len(rates), len(providers)) == EXPECTED_COUNTS[relpath]


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_run_extraction_writes_example_rates_and_providers(
    relpath: str, tic_examples: Path, tmp_path: Path, no_network: list[Any]
) -> None:
    source = tic_examples / relpath
    _, expected_rates, expected_providers, _ = EXAMPLES[relpath]
    result, _, folder = _run(source, tmp_path)
    assert result.status == "success", result.error
    _assert_tables(folder, _network_id(source), expected_rates, expected_providers)
    assert no_network == []


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_run_extraction_writes_contract_column_types(
    relpath: str, tic_examples: Path, tmp_path: Path
) -> None:
    _, _, folder = _run(tic_examples / relpath, tmp_path)
    for table, columns in (("rates", RATE_COLUMNS), ("providers", PROVIDER_COLUMNS)):
        schema = pq.read_schema(folder / f"{table}.parquet")
        assert set(schema.names) == set(columns), table
        for column, kind in columns.items():
            arrow_type = schema.field(column).type
            assert _type_matches(arrow_type, kind), f"{table}.{column} is {arrow_type}, not {kind}"


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_run_extraction_reports_example_counts(
    relpath: str, tic_examples: Path, tmp_path: Path, no_network: list[Any]
) -> None:
    source = tic_examples / relpath
    items, expected_rates, expected_providers, _ = EXAMPLES[relpath]
    result, status, _ = _run(source, tmp_path)
    size = source.stat().st_size
    assert status["status"] == "success"
    assert status["error"] is None
    assert status["network_id"] == _network_id(source)
    assert {
        key: status[key]
        for key in (
            "items_seen",
            "items_matched",
            "rate_rows",
            "provider_rows",
            "unresolved_references",
            "remote_references_fetched",
            "remote_references_failed",
            "unknown_keys",
            "invalid_values",
            "compression",
            "bytes_read",
            "bytes_decoded",
            "whitelist_size",
            "plan_metadata",
        )
    } == {
        "items_seen": items,
        "items_matched": items,
        "rate_rows": len(expected_rates),
        "provider_rows": len(expected_providers),
        "unresolved_references": 0,
        "remote_references_fetched": 0,
        "remote_references_failed": 0,
        "unknown_keys": 0,
        "invalid_values": 0,
        "compression": "none",
        "bytes_read": size,
        "bytes_decoded": size,
        "whitelist_size": None,
        "plan_metadata": None,
    }
    assert not status["unknown_key_names"]
    assert no_network == []


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_run_extraction_reports_example_file_metadata(
    relpath: str, tic_examples: Path, tmp_path: Path
) -> None:
    _, _, _, metadata = EXAMPLES[relpath]
    _, status, _ = _run(tic_examples / relpath, tmp_path)
    assert status["file_metadata"] == metadata


@pytest.mark.parametrize("relpath", EXAMPLE_IDS)
def test_run_extraction_status_json_matches_result(
    relpath: str, tic_examples: Path, tmp_path: Path
) -> None:
    source = tic_examples / relpath
    result, status, folder = _run(source, tmp_path)
    assert set(status) >= STATUS_KEYS
    assert result.to_dict() == status
    for key in STATUS_KEYS:
        assert hasattr(result, key), key
    for key in ("status", "error", "network_id", "items_seen", "items_matched", "rate_rows",
                "provider_rows", "unresolved_references", "remote_references_fetched",
                "remote_references_failed", "whitelist_size", "compression"):  # fmt: skip
        assert getattr(result, key) == status[key], key
    assert status["url"].endswith(source.name)
    assert isinstance(status["engine"], str) and status["engine"]
    started = datetime.fromisoformat(status["started_at"])
    finished = datetime.fromisoformat(status["finished_at"])
    assert started.utcoffset() == timedelta(0)
    assert finished.utcoffset() == timedelta(0)
    assert started <= finished
    assert status["duration_seconds"] >= 0
    assert isinstance(status["warnings"], list)
    assert set(status["output_files"]) == {"rates", "providers"}
    for table, path in status["output_files"].items():
        assert Path(path).name == f"{table}.parquet"
        assert (folder / f"{table}.parquet").is_file()


def test_run_extraction_does_not_fetch_unreferenced_location(
    tic_examples: Path, tmp_path: Path, no_network: list[Any]
) -> None:
    # provider_references id 2 is only `"location": "https://www.cms.gov/some_provider_group.json"`
    # and no negotiated rate references it.
    source = tic_examples / "v1/in-network-rates-fee-for-service-single-plan-sample.json"
    result, status, folder = _run(source, tmp_path)
    assert result.status == "success", result.error
    assert (status["remote_references_fetched"], status["remote_references_failed"]) == (0, 0)
    assert no_network == []
    group_ids = {row["provider_group_id"] for row in _rows(folder / "providers.parquet")}
    assert "2" not in group_ids
    assert all(row["source"] != "remote" for row in _rows(folder / "providers.parquet"))


def test_run_extraction_gives_identical_inline_lists_the_same_key_across_files(
    tic_examples: Path, tmp_path: Path
) -> None:
    # The same two-TIN list (11-1111111 and 22-2222222, NPIs 1111111111..5555555555) is inline in
    # the v1 fee-for-service, multiple-plans, bundle and capitation samples: the key is a hash of
    # the content, so it is the same key everywhere.
    names = [
        "in-network-rates-fee-for-service-single-plan-sample.json",
        "in-network-rates-multiple-plans-sample.json",
        "in-network-rates-bundle-single-plan-sample.json",
        "in-network-rates-capitation-single-plan-sample.json",
    ]
    wanted = _content(V1_MULTI_PROVIDERS, "inline:A")
    keys = set()
    for name in names:
        _, _, folder = _run(tic_examples / "v1" / name, tmp_path)
        providers = _rows(folder / "providers.parquet")
        inline = {r["provider_group_id"] for r in providers if r["source"] == "inline"}
        keys.update(key for key in inline if _content(providers, key) == wanted)
    assert len(keys) == 1, keys


def test_run_extraction_passes_plan_metadata_through(tic_examples: Path, tmp_path: Path) -> None:
    plan_metadata = {"plan_name": "Plan A PPO", "plan_id": "1111111111", "source": "toc"}
    source = tic_examples / "v2/in-network-rates-multiple-plans-sample.json"
    result, status, _ = _run(source, tmp_path, plan_metadata=plan_metadata)
    assert result.status == "success", result.error
    assert status["plan_metadata"] == plan_metadata


def test_run_extraction_uses_given_network_id(tic_examples: Path, tmp_path: Path) -> None:
    source = tic_examples / "v2/in-network-rates-no-npi.json"
    result, status, folder = _run(source, tmp_path, network_id="acme-ppo")
    assert result.status == "success", result.error
    assert folder == tmp_path / "acme-ppo"
    assert status["network_id"] == "acme-ppo"
    _assert_tables(folder, "acme-ppo", V2_NONPI_RATES, V2_NONPI_PROVIDERS)


# ---------------------------------------------------------------------------------------------
# 2. CPT whitelist
# ---------------------------------------------------------------------------------------------

ALL_TYPES = "v2/in-network-rates-all-negotiated-types-sample.json"


def _whitelist_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "whitelist.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make_whitelist",
    [
        pytest.param(lambda tmp: ["27447"], id="list"),
        pytest.param(lambda tmp: ("27447",), id="tuple"),
        pytest.param(lambda tmp: {" 27447 "}, id="set-with-spaces"),
        pytest.param(lambda tmp: iter(["27447"]), id="iterator"),
        pytest.param(lambda tmp: str(_whitelist_file(tmp, "27447\n")), id="file-str"),
        pytest.param(lambda tmp: _whitelist_file(tmp, "27447\n"), id="file-path"),
    ],
)
def test_run_extraction_whitelist_keeps_only_listed_code_and_its_groups(
    make_whitelist: Callable[[Path], Any], tic_examples: Path, tmp_path: Path
) -> None:
    # 27447's one negotiated_rates entry references [1, 2]: both groups' providers are written.
    out = tmp_path / "out"
    result, status, folder = _run(
        tic_examples / ALL_TYPES, out, cpt_whitelist=make_whitelist(tmp_path)
    )
    assert result.status == "success", result.error
    _assert_tables(folder, _network_id(Path(ALL_TYPES)), ALL_RATES_27447,
                   [*ALL_GROUP_1, *ALL_GROUP_2])  # fmt: skip
    assert (status["items_seen"], status["items_matched"]) == (6, 1)
    assert (status["rate_rows"], status["provider_rows"]) == (2, 6)
    assert status["whitelist_size"] == 1


@pytest.mark.parametrize(
    ("whitelist", "expected_rates", "expected_providers"),
    [
        pytest.param(["0200"], ALL_RATES_0200, ALL_GROUP_2, id="rc-0200-group-2-only"),
        pytest.param(["99214", "97110"], [*ALL_RATES_99214, *ALL_RATES_97110], ALL_GROUP_1,
                     id="two-codes-group-1-only"),
        pytest.param(["99285", "80053"], [*ALL_RATES_99285, *ALL_RATES_80053],
                     [*ALL_GROUP_1, *ALL_GROUP_2], id="two-codes-two-groups"),
    ],
)  # fmt: skip
def test_run_extraction_whitelist_writes_only_referenced_groups(
    whitelist: list[str],
    expected_rates: list[dict[str, Any]],
    expected_providers: list[dict[str, Any]],
    tic_examples: Path,
    tmp_path: Path,
) -> None:
    result, status, folder = _run(tic_examples / ALL_TYPES, tmp_path, cpt_whitelist=whitelist)
    assert result.status == "success", result.error
    _assert_tables(folder, _network_id(Path(ALL_TYPES)), expected_rates, expected_providers)
    assert status["items_matched"] == len(whitelist)
    assert status["whitelist_size"] == len(whitelist)


def test_run_extraction_whitelist_mixes_file_and_inline_groups(
    tic_examples: Path, tmp_path: Path, no_network: list[Any]
) -> None:
    source = tic_examples / "v1/in-network-rates-fee-for-service-single-plan-sample.json"
    result, status, folder = _run(source, tmp_path, cpt_whitelist=["27448"])
    assert result.status == "success", result.error
    expected_providers = [
        *_providers("1", "ein", "11-1111111", NPIS_1_TO_5, source="file"),
        *_providers("1", "ein", "22-2222222", NPIS_1_TO_5, source="file"),
        *_providers("inline:C", "npi", "6666666666", [6666666666], source="inline"),
    ]
    _assert_tables(folder, _network_id(source), V1_FFS_RATES[3:], expected_providers)
    assert (status["items_seen"], status["items_matched"], status["rate_rows"]) == (2, 1, 2)
    assert status["provider_rows"] == 11
    assert (status["remote_references_fetched"], status["remote_references_failed"]) == (0, 0)
    assert no_network == []


@pytest.mark.parametrize(
    "relpath",
    [
        "v1/in-network-rates-bundle-single-plan-sample.json",
        "v2/in-network-rates-bundle-single-plan-sample.json",
        "v1/in-network-rates-capitation-single-plan-sample.json",
        "v2/in-network-rates-capitation-single-plan-sample.json",
    ],
)
def test_run_extraction_whitelist_ignores_bundled_and_covered_codes(
    relpath: str, tic_examples: Path, tmp_path: Path
) -> None:
    # 27446 appears only in bundled_codes / covered_services, never as an item's own code
    # (bundle: 81.54, capitation: 27447).
    result, status, folder = _run(tic_examples / relpath, tmp_path, cpt_whitelist=["27446"])
    assert result.status == "success", result.error
    assert (status["items_seen"], status["items_matched"]) == (1, 0)
    assert (status["rate_rows"], status["provider_rows"]) == (0, 0)
    assert _rows(folder / "rates.parquet") == []
    assert _rows(folder / "providers.parquet") == []


def test_run_extraction_whitelist_trims_and_upper_cases(tic_examples: Path, tmp_path: Path) -> None:
    # v2/in-network-rates-no-npi.json with its one billing code changed to the HCPCS code A4206.
    data = json.loads((tic_examples / "v2/in-network-rates-no-npi.json").read_text("utf-8"))
    data["in_network"][0]["billing_code_type"] = "HCPCS"
    data["in_network"][0]["billing_code"] = "A4206"
    source = tmp_path / "hcpcs-a4206.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result, status, folder = _run(source, tmp_path / "out", cpt_whitelist=["  a4206 \t"])
    assert result.status == "success", result.error
    expected = [{**V2_NONPI_RATES[0], "billing_code_type": "HCPCS", "billing_code": "A4206"}]
    _assert_tables(folder, "hcpcs-a4206", expected, V2_NONPI_PROVIDERS)
    assert status["items_matched"] == 1


# ---------------------------------------------------------------------------------------------
# 3. A real payer file: gzip, 370 remote `location` references to an unreachable host
# ---------------------------------------------------------------------------------------------

REAL = "real/carefirst-in-network-v1.0.0-location-refs.json.gz"
REAL_NETWORK_ID = "carefirst-in-network-v1.0.0-location-refs"
REAL_TIME_LIMIT_SECONDS = 120

# Read from the file with zcat/jq: item 59409 has five negotiated_rates, one price each, each
# referencing one provider group. The file defines 370 ids but the rates reference only 74 of
# them, 690.65158 .. 690.65842; 690.64470 (from the task brief) is defined but referenced by no
# rate, so it cannot appear in the output. Ids with a trailing zero that are referenced include
# 690.65570 (1,721 rates), 690.65630, 690.65640, 690.65670 and 690.65690.
_REAL_59409 = _item("CPT", "2022", "59409", "ffs", "Surgery", "vaginal delivery only")
REAL_59409_RATES = [
    _rate(_REAL_59409, "negotiated", 2563.86, "9999-12-31", "professional", ["690.65634"],
          service_code=["24"]),
    _rate(_REAL_59409, "negotiated", 3168.00, "9999-12-31", "professional", ["690.65782"],
          service_code=["24"]),
    _rate(_REAL_59409, "per diem", 2500.00, "9999-12-31", "professional", ["690.65556"],
          service_code=["25"]),
    _rate(_REAL_59409, "negotiated", 1242.00, "9999-12-31", "professional", ["690.65742"],
          service_code=["24"]),
    _rate(_REAL_59409, "negotiated", 1927.25, "9999-12-31", "professional", ["690.65701"],
          service_code=["24"]),
]  # fmt: skip
REAL_METADATA = _metadata(
    "CareFirst BlueCross BlueShield", "health insurance issuer", "2020-08-27", "1.0.0"
)


@pytest.fixture(scope="module")
def real_run(
    tic_examples: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, dict[str, Any], Path, float]:
    """One run of the real file without whitelist (about 5 s), shared by the slow tests below."""
    output_dir = tmp_path_factory.mktemp("real")
    started = time.monotonic()
    result, status, folder = _run(tic_examples / REAL, output_dir)
    return result, status, folder, time.monotonic() - started


@pytest.mark.slow
def test_run_extraction_real_file_is_incomplete_with_unreachable_locations(
    real_run: tuple[Any, dict[str, Any], Path, float], tic_examples: Path
) -> None:
    result, status, folder, elapsed = real_run
    # the rates are all there; the providers of the unreachable locations are not
    assert result.status == "incomplete", result.error
    assert elapsed < REAL_TIME_LIMIT_SECONDS
    assert status["network_id"] == REAL_NETWORK_ID
    assert status["compression"] == "gzip"
    assert status["bytes_read"] == (tic_examples / REAL).stat().st_size == 523118
    assert status["bytes_decoded"] == 29659798
    assert (status["items_seen"], status["items_matched"]) == (1773, 1773)
    assert status["rate_rows"] == 122310
    # every referenced id is defined (by a `location` entry), so none is unresolved
    assert status["unresolved_references"] == 0
    # the 74 referenced ids have 74 distinct location URLs, all on an unreachable host
    assert status["remote_references_fetched"] == 0
    assert status["remote_references_failed"] == 74
    assert status["incomplete"], "a failed remote reference must make the status incomplete"
    assert status["incomplete"][0].startswith(
        "74 of 74 remote provider-reference files could not be fetched"
    ), status["incomplete"]
    assert "mrf.carefirst.com" in status["incomplete"][0]
    # nothing could be fetched, so no provider rows
    assert status["provider_rows"] == 0
    assert _rows(folder / "providers.parquet") == []
    assert status["file_metadata"] == REAL_METADATA
    assert status["invalid_values"] == 0


@pytest.mark.slow
def test_run_extraction_real_file_rates_content(
    real_run: tuple[Any, dict[str, Any], Path, float],
) -> None:
    _, _, folder, _ = real_run
    table = pq.read_table(
        folder / "rates.parquet",
        columns=["billing_code", "negotiated_type", "expiration_date", "provider_group_ids"],
    )
    assert table.num_rows == 122310
    expiration = table.column("expiration_date").to_pylist()
    assert expiration.count("9999-12-31") == 122262
    assert expiration.count("2022-12-31") == 48
    negotiated_type = table.column("negotiated_type").to_pylist()
    assert negotiated_type.count("per diem") == 1
    assert negotiated_type.count("negotiated") == 122309
    group_ids = table.column("provider_group_ids").to_pylist()
    assert all(len(ids) == 1 for ids in group_ids)
    flat = [ids[0] for ids in group_ids]
    distinct = set(flat)
    assert len(distinct) == 74
    assert all(re.fullmatch(r"690\.\d{5}", gid) for gid in distinct), sorted(distinct)[:5]
    assert min(distinct) == "690.65158" and max(distinct) == "690.65842"
    # trailing zeros are kept: never rounded to 690.6557 etc.
    assert {"690.65570", "690.65630", "690.65640", "690.65670", "690.65690"} <= distinct
    assert "690.6557" not in distinct
    assert flat.count("690.65570") == 1721
    assert "690.64470" not in distinct  # defined in the file but referenced by no rate


@pytest.mark.slow
def test_run_extraction_real_file_item_59409_rows(
    real_run: tuple[Any, dict[str, Any], Path, float],
) -> None:
    _, _, folder, _ = real_run
    rows = [r for r in _rows(folder / "rates.parquet") if r["billing_code"] == "59409"]
    assert _sorted(rows) == _sorted(_substitute(REAL_59409_RATES, {}, REAL_NETWORK_ID))


def test_run_extraction_real_file_whitelist_fetches_only_matched_references(
    tic_examples: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    result, status, folder = _run(tic_examples / REAL, tmp_path, cpt_whitelist=["59409"])
    assert time.monotonic() - started < REAL_TIME_LIMIT_SECONDS
    assert result.status == "incomplete", result.error
    assert (status["items_seen"], status["items_matched"]) == (1773, 1)
    assert status["rate_rows"] == 5
    assert status["remote_references_failed"] == 5
    assert status["provider_rows"] == 0
    _assert_tables(folder, REAL_NETWORK_ID, REAL_59409_RATES, [])


# ---------------------------------------------------------------------------------------------
# 4. Files that are not in-network-rates files
# ---------------------------------------------------------------------------------------------

# Allowed-amounts files are extracted: tests/test_allowed_amounts.py.
NOT_IN_NETWORK = [
    ("v1/table-of-contents-sample.json", r"table.of.contents"),
    ("v2/table-of-contents-sample.json", r"table.of.contents"),
    ("v1/provider-reference.json", r"provider.reference"),
]


@pytest.mark.parametrize(("relpath", "pattern"), NOT_IN_NETWORK)
def test_run_extraction_fails_on_other_file_types(
    relpath: str, pattern: str, tic_examples: Path, tmp_path: Path
) -> None:
    source = tic_examples / relpath
    result, status, folder = _run(source, tmp_path)
    assert result.status == "failed"
    assert result.error is not None
    assert re.search(pattern, result.error, re.IGNORECASE), result.error
    assert status["status"] == "failed"
    assert status["error"] == result.error
    assert status["output_files"] == {}
    assert result.to_dict() == status
    for name in ("rates.parquet", "providers.parquet", "rates.csv", "providers.csv"):
        assert not (folder / name).exists(), name


def test_run_extraction_failure_removes_tables_of_earlier_run(
    tic_examples: Path, tmp_path: Path
) -> None:
    ok, _, folder = _run(
        tic_examples / "v2/in-network-rates-no-npi.json", tmp_path, network_id="same"
    )
    assert ok.status == "success", ok.error
    assert (folder / "rates.parquet").is_file()
    failed, status, _ = _run(
        tic_examples / "v2/table-of-contents-sample.json", tmp_path, network_id="same"
    )
    assert failed.status == "failed"
    assert status["status"] == "failed"
    assert not (folder / "rates.parquet").exists()
    assert not (folder / "providers.parquet").exists()


# ---------------------------------------------------------------------------------------------
# 5. CSV output
# ---------------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_run_extraction_writes_csv_with_json_list_columns(
    tic_examples: Path, tmp_path: Path
) -> None:
    source = tic_examples / ALL_TYPES
    result, status, folder = _run(source, tmp_path / "csv", output_format="csv")
    assert result.status == "success", result.error
    assert (folder / "rates.csv").is_file()
    assert (folder / "providers.csv").is_file()
    assert not (folder / "rates.parquet").exists()
    assert {Path(p).name for p in status["output_files"].values()} == {
        "rates.csv",
        "providers.csv",
    }

    rates = _csv_rows(folder / "rates.csv")
    providers = _csv_rows(folder / "providers.csv")
    assert set(rates[0]) == set(RATE_COLUMNS)
    assert set(providers[0]) == set(PROVIDER_COLUMNS)

    _, parquet_status, parquet_folder = _run(source, tmp_path / "parquet")
    assert len(rates) == len(_rows(parquet_folder / "rates.parquet")) == 8
    assert len(providers) == len(_rows(parquet_folder / "providers.parquet")) == 6
    assert (status["rate_rows"], status["provider_rows"]) == (
        parquet_status["rate_rows"],
        parquet_status["provider_rows"],
    )

    knee = sorted(
        (r for r in rates if r["billing_code"] == "27447"), key=lambda r: r["negotiated_type"]
    )
    assert [r["negotiated_type"] for r in knee] == ["fee schedule", "negotiated"]
    assert json.loads(knee[0]["provider_group_ids"]) == ["1", "2"]
    assert json.loads(knee[0]["service_code"]) == ["21", "22"]
    assert float(knee[0]["negotiated_rate"]) == 8500.0
    (office,) = (r for r in rates if r["billing_code"] == "99214")
    assert json.loads(office["service_code"]) == ["11"]
    assert json.loads(office["provider_group_ids"]) == ["1"]
    (icu,) = (r for r in rates if r["billing_code"] == "0200")  # leading zero kept
    assert icu["negotiated_type"] == "per diem"

    hospital = [p for p in providers if p["tin_value"] == "34-5678901"]
    assert sorted(int(p["npi"]) for p in hospital) == [5678901234, 6789012345]
    assert all(json.loads(p["network_name"]) == ["Comprehensive Health Plus Network"]
               for p in hospital)  # fmt: skip
