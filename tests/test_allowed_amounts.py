"""Allowed-amounts files extracted (mrfbatch.allowed_amounts through run_extraction), and their
tables in a run's manifest, files table and database.

The rows expected from the CMS examples (shared/tic-examples v1/, v2/, negative/) are written
by hand from the files; generated files are checked against tests/support/allowed.py's oracle.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.status import ExtractionResult
from support.allowed import allowed_doc, expected_rows
from support.runs import make_run, query

TIC = Path(
    os.environ.get("MRFBATCH_TIC_EXAMPLES")
    or Path(__file__).resolve().parents[2] / "shared" / "tic-examples"
)
TABLES = ("allowed_amounts", "allowed_amount_providers")
AMOUNT_COLUMNS = [
    "network_id",
    "payment_id",
    "billing_code_type",
    "billing_code_type_version",
    "billing_code",
    "name",
    "description",
    "tin_type",
    "tin_value",
    "billing_class",
    "setting",
    "service_code",
    "allowed_amount",
    "billing_code_modifier",
    "provider_entries",
]
PROVIDER_COLUMNS = ["network_id", "payment_id", "provider_entry", "npi", "billed_charge"]


@pytest.fixture(scope="session")
def tic() -> Path:
    if not TIC.is_dir():
        pytest.skip(
            f"TiC example files not found at {TIC}: they live in the shared folder beside the "
            "repository (or set MRFBATCH_TIC_EXAMPLES to their folder)"
        )
    return TIC


def extract(
    source: Path | str, out: Path, network_id: str = "aa", **kwargs: Any
) -> tuple[ExtractionResult, dict[str, Any]]:
    options = ExtractionOptions(**kwargs.pop("options", {}))
    result = run_extraction(str(source), out, options, network_id=network_id, **kwargs)
    status = json.loads((out / network_id / "status.json").read_text())
    return result, status


def rows(path: str | Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------------------------------
# The CMS examples, every row written by hand
# ---------------------------------------------------------------------------------------------

NAME = "Established Patient Office or Other Outpatient Services"
DESCRIPTION = (
    "office or other outpatient visits for the evaluation and management of an established "
    "patient, which requires at least two of these three key components: a detailed history, a "
    "detailed examination and medical decision making of moderate complexity"
)
# The same three provider entries in all four examples: 50.00 for three NPIs, 60.00 for one,
# 70.00 for four.
EXAMPLE_PROVIDERS = [
    (0, 1234567891, 50.0),
    (0, 1234567892, 50.0),
    (0, 1234567893, 50.0),
    (1, 1111111111, 60.0),
    (2, 2222222222, 70.0),
    (2, 3333333333, 70.0),
    (2, 4444444444, 70.0),
    (2, 5555555555, 70.0),
]


def example_payment(setting: str | None, modifier: list[str] | None) -> dict[str, Any]:
    return {
        "network_id": "aa",
        "payment_id": "0.0.0",
        "billing_code_type": "CPT",
        "billing_code_type_version": "2020",
        "billing_code": "99214",
        "name": NAME,
        "description": DESCRIPTION,
        "tin_type": "ein",
        "tin_value": "1234567890",
        "billing_class": "professional",
        "setting": setting,
        "service_code": ["01", "02", "03"],
        "allowed_amount": 25.0,
        "billing_code_modifier": modifier,
        "provider_entries": 3,
    }


SINGLE_PLAN = {"plan_name": "medicare", "plan_id_type": "hios", "plan_id": "1111111111"}
NO_PLAN = {"plan_name": None, "plan_id_type": None, "plan_id": None}
EXAMPLES = [
    ("v1/allowed-amounts-single-plan-sample.json", None, ["25"], "1.0.0", SINGLE_PLAN),
    ("v1/allowed-amounts-multiple-plan-sample.json", None, None, "1.0.0", NO_PLAN),
    ("v2/allowed-amounts-single-plan-sample.json", "outpatient", ["25"], "2.0.0", SINGLE_PLAN),
    ("v2/allowed-amounts-multiple-plan-sample.json", "outpatient", None, "2.0.0", NO_PLAN),
]


@pytest.mark.parametrize(("relpath", "setting", "modifier", "version", "plan"), EXAMPLES)
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_run_extraction_allowed_amounts_cms_examples(
    tic: Path,
    tmp_path: Path,
    relpath: str,
    setting: str | None,
    modifier: list[str] | None,
    version: str,
    plan: dict[str, str | None],
    engine: str,
) -> None:
    result, status = extract(tic / relpath, tmp_path, options={"engine": engine})
    assert result.status == "success", result.error
    assert status == result.to_dict()
    assert status["file_kind"] == "allowed-amounts"
    assert status["engine"] == "reference"  # whatever was asked: docs/extract.md
    folder = tmp_path / "aa"
    assert status["output_files"] == {
        "allowed_amounts": str(folder / "allowed_amounts.parquet"),
        "allowed_amount_providers": str(folder / "allowed_amount_providers.parquet"),
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        "allowed_amount_providers.parquet",
        "allowed_amounts.parquet",
        "status.json",
    ]
    assert rows(folder / "allowed_amounts.parquet") == [example_payment(setting, modifier)]
    assert rows(folder / "allowed_amount_providers.parquet") == [
        {
            "network_id": "aa",
            "payment_id": "0.0.0",
            "provider_entry": entry,
            "npi": npi,
            "billed_charge": charge,
        }
        for entry, npi, charge in EXAMPLE_PROVIDERS
    ]
    counts = ("items_seen", "items_matched", "allowed_amount_rows", "allowed_amount_provider_rows")
    assert [status[c] for c in counts] == [1, 1, 1, 8]
    assert (status["rate_rows"], status["provider_rows"]) == (0, 0)
    assert status["file_metadata"] == {
        "reporting_entity_name": "cms",
        "reporting_entity_type": "cms",
        **plan,
        "plan_market_type": "individual" if plan["plan_name"] else None,
        "plan_sponsor_name": None,
        "issuer_name": None,
        "last_updated_on": "2020-08-27",
        "version": version,
    }
    assert (status["unknown_keys"], status["invalid_values"]) == (0, 0)


@pytest.mark.parametrize(
    "relpath",
    [
        "v1/allowed-amounts-single-plan-empty-sample.json",
        "v1/allowed-amounts-multiple-plan-empty-sample.json",
        "v1/multiplan-empty-example.json",
    ],
)
def test_run_extraction_empty_out_of_network_is_a_success_with_empty_tables(
    tic: Path, tmp_path: Path, relpath: str
) -> None:
    result, status = extract(tic / relpath, tmp_path)
    assert result.status == "success", result.error
    assert status["file_kind"] == "allowed-amounts"
    assert (status["items_seen"], status["allowed_amount_rows"]) == (0, 0)
    assert status["allowed_amount_provider_rows"] == 0
    assert status["file_metadata"]["reporting_entity_name"] == "medicare"
    amounts = pq.read_table(status["output_files"]["allowed_amounts"])
    providers = pq.read_table(status["output_files"]["allowed_amount_providers"])
    assert (amounts.num_rows, providers.num_rows) == (0, 0)
    assert amounts.schema.names == AMOUNT_COLUMNS
    assert providers.schema.names == PROVIDER_COLUMNS
    assert str(amounts.schema.field("allowed_amount").type) == "double"
    assert str(providers.schema.field("npi").type) == "int64"


def test_run_extraction_validator_negative_file_counts_what_the_schema_lacks(
    tic: Path, tmp_path: Path
) -> None:
    """`rporting_plans` and `Name` are unknown keys; "25.00" is read as 25.0; 4 as "4"."""
    result, status = extract(tic / "negative/validator-allowed-amounts-error.json", tmp_path)
    assert result.status == "success", result.error
    assert status["unknown_key_names"] == {"top.rporting_plans": 1, "out_of_network.Name": 1}
    (payment,) = rows(status["output_files"]["allowed_amounts"])
    assert payment["name"] is None
    assert payment["service_code"] == ["01", "02", "03", "4"]
    assert payment["allowed_amount"] == 25.0
    assert status["file_metadata"]["last_updated_on"] == "Jan 2nd, 2020"


def test_run_extraction_whitelist_filters_allowed_amount_items(tic: Path, tmp_path: Path) -> None:
    source = tic / "v2/allowed-amounts-single-plan-sample.json"
    result, status = extract(source, tmp_path, cpt_whitelist=["99213"])
    assert result.status == "success", result.error
    assert (status["items_seen"], status["items_matched"]) == (1, 0)
    assert status["matched_codes"] == {}
    assert rows(status["output_files"]["allowed_amounts"]) == []
    result, status = extract(source, tmp_path, cpt_whitelist=["99214", "27447"])
    assert (status["items_matched"], status["allowed_amount_provider_rows"]) == (1, 8)
    assert status["matched_codes"] == {"99214": 1}  # the file's one item


def test_run_extraction_allowed_amounts_csv(tic: Path, tmp_path: Path) -> None:
    source = tic / "v1/allowed-amounts-single-plan-sample.json"
    result, status = extract(source, tmp_path, options={"output_format": "csv"})
    assert result.status == "success", result.error
    folder = tmp_path / "aa"
    assert status["output_files"] == {
        "allowed_amounts": str(folder / "allowed_amounts.csv"),
        "allowed_amount_providers": str(folder / "allowed_amount_providers.csv"),
    }
    with (folder / "allowed_amounts.csv").open(newline="", encoding="utf-8") as f:
        (payment,) = list(csv.DictReader(f))
    assert list(payment) == AMOUNT_COLUMNS
    assert json.loads(payment["service_code"]) == ["01", "02", "03"]
    assert json.loads(payment["billing_code_modifier"]) == ["25"]
    assert (payment["payment_id"], float(payment["allowed_amount"])) == ("0.0.0", 25.0)
    assert payment["setting"] == ""  # null: v1 has no setting
    with (folder / "allowed_amount_providers.csv").open(newline="", encoding="utf-8") as f:
        providers = list(csv.DictReader(f))
    assert [
        (int(p["provider_entry"]), int(p["npi"]), float(p["billed_charge"])) for p in providers
    ] == EXAMPLE_PROVIDERS


# ---------------------------------------------------------------------------------------------
# Generated files against the oracle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_run_extraction_generated_allowed_amounts_match_the_oracle(
    tmp_path: Path, seed: int
) -> None:
    doc = allowed_doc(seed)
    source = write_json(tmp_path / "in" / "aa.json", doc)
    whitelist = None if seed % 2 == 0 else {"99213", "27447"}
    result, status = extract(
        source,
        tmp_path / "out",
        cpt_whitelist=None if whitelist is None else sorted(whitelist),
        options={"rate_batch_size": 3, "provider_batch_size": 5},  # several row groups
    )
    assert result.status == "success", result.error
    amounts, providers = expected_rows(doc, "aa", whitelist)
    assert rows(status["output_files"]["allowed_amounts"]) == amounts
    assert rows(status["output_files"]["allowed_amount_providers"]) == providers
    matched = [
        i for i in doc["out_of_network"] if whitelist is None or i["billing_code"] in whitelist
    ]
    assert (status["items_seen"], status["items_matched"]) == (6, len(matched))
    if whitelist is not None:
        codes = Counter(str(i["billing_code"]) for i in matched)
        assert status["matched_codes"] == dict(sorted(codes.items()))
    else:
        assert status["matched_codes"] is None
    assert status["allowed_amount_rows"] == len(amounts)
    assert status["allowed_amount_provider_rows"] == len(providers)
    assert (status["unknown_keys"], status["invalid_values"]) == (0, 0)


def test_generated_files_hold_the_cases_the_oracle_must_cover() -> None:
    """The seeds above give empty arrays, absent optional fields and modifiers."""
    docs = [allowed_doc(seed) for seed in range(8)]
    items = [item for doc in docs for item in doc["out_of_network"]]
    amounts = [a for item in items for a in item["allowed_amounts"]]
    payments = [p for a in amounts for p in a["payments"]]
    entries = [e for p in payments for e in p["providers"]]
    assert any(not item["allowed_amounts"] for item in items)
    assert any("description" not in item for item in items)
    assert any(not a["payments"] for a in amounts) and any(len(a["payments"]) > 1 for a in amounts)
    assert any("setting" not in a for a in amounts) and any(
        "service_code" not in a for a in amounts
    )
    assert any(not p["providers"] for p in payments)
    assert any("billing_code_modifier" in p for p in payments)
    assert any(not e["npi"] for e in entries) and any(len(e["npi"]) > 1 for e in entries)


def test_payment_ids_are_stable_across_reruns_and_whitelists(tmp_path: Path) -> None:
    doc = allowed_doc(3)
    source = write_json(tmp_path / "in" / "aa.json", doc)
    paid = [
        i["billing_code"]
        for i in doc["out_of_network"]
        if any(a["payments"] for a in i["allowed_amounts"])
    ]
    assert len(set(paid)) > 1  # so one code's payments are some, not all
    _, everything = extract(source, tmp_path / "a")
    _, again = extract(source, tmp_path / "b")
    _, some = extract(source, tmp_path / "c", cpt_whitelist=[paid[-1]])
    ids = [r["payment_id"] for r in rows(everything["output_files"]["allowed_amounts"])]
    assert ids == [r["payment_id"] for r in rows(again["output_files"]["allowed_amounts"])]
    assert len(set(ids)) == len(ids)
    some_ids = [r["payment_id"] for r in rows(some["output_files"]["allowed_amounts"])]
    assert some_ids and set(some_ids) < set(ids)


def test_run_extraction_odd_values_are_counted_not_fatal(tmp_path: Path) -> None:
    doc = {
        "reporting_entity_name": "x",
        "out_of_network": [
            7,
            {
                "billing_code": "1",
                "allowed_amounts": [
                    "not an object",
                    {
                        "tin": {"type": "ein", "value": 12},
                        "colour": "blue",
                        "payments": [
                            {
                                "allowed_amount": "n/a",
                                "providers": [{"npi": [5], "billed_charge": 1}],
                            }
                        ],
                    },
                ],
            },
        ],
    }
    result, status = extract(write_json(tmp_path / "odd.json", doc), tmp_path)
    assert result.status == "success", result.error
    (payment,) = rows(status["output_files"]["allowed_amounts"])
    # item 1 (item 0 is not an object), its allowed_amounts entry 1 (entry 0 is not one)
    assert payment["payment_id"] == "1.1.0"
    assert (payment["tin_value"], payment["allowed_amount"]) == ("12", None)
    assert status["invalid_values"] == 3  # item 0, allowed_amounts entry 0, "n/a"
    assert status["unknown_key_names"] == {"allowed_amounts.colour": 1}
    assert rows(status["output_files"]["allowed_amount_providers"]) == [
        {
            "network_id": "aa",
            "payment_id": "1.1.0",
            "provider_entry": 0,
            "npi": 5,
            "billed_charge": 1.0,
        }
    ]


# ---------------------------------------------------------------------------------------------
# Which kind of file: both, neither, stale tables of the other kind, the value limit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize(
    "doc",
    [
        {"in_network": [], "out_of_network": []},
        {"out_of_network": [], "in_network": []},
    ],
    ids=["in_network-first", "out_of_network-first"],
)
def test_run_extraction_refuses_a_file_of_both_kinds(
    tmp_path: Path, doc: dict[str, Any], engine: str
) -> None:
    result, status = extract(
        write_json(tmp_path / "both.json", doc), tmp_path, options={"engine": engine}
    )
    assert result.status == "failed"
    assert "both `in_network` and `out_of_network`" in (result.error or "") or (
        "both `out_of_network` and `in_network`" in (result.error or "")
    )
    assert result.retryable is False
    assert status["output_files"] == {}
    assert sorted(p.name for p in (tmp_path / "aa").iterdir()) == ["status.json"]


def test_run_extraction_refuses_a_file_of_neither_kind(tmp_path: Path) -> None:
    doc = {"reporting_entity_name": "x", "version": "2.0.0"}
    result, _ = extract(write_json(tmp_path / "neither.json", doc), tmp_path)
    assert result.status == "failed"
    assert result.error == (
        "no `in_network` array in this JSON (top-level keys: reporting_entity_name, version); "
        "expected an in-network-rates file (`in_network`) or an allowed-amounts file "
        "(`out_of_network`)"
    )


def test_run_extraction_refuses_out_of_network_that_is_not_an_array(tmp_path: Path) -> None:
    result, _ = extract(write_json(tmp_path / "obj.json", {"out_of_network": {}}), tmp_path)
    assert result.status == "failed"
    assert result.error == "`out_of_network` is dict; expected an array"


def test_run_extraction_removes_the_other_kinds_tables(tic: Path, tmp_path: Path) -> None:
    in_network = tic / "v2/in-network-rates-no-npi.json"
    allowed = tic / "v2/allowed-amounts-single-plan-sample.json"
    folder = tmp_path / "aa"
    first, _ = extract(in_network, tmp_path)
    assert first.status == "success" and (folder / "rates.parquet").is_file()
    second, status = extract(allowed, tmp_path)
    assert second.status == "success"
    assert sorted(p.name for p in folder.iterdir()) == [
        "allowed_amount_providers.parquet",
        "allowed_amounts.parquet",
        "status.json",
    ]
    third, status = extract(in_network, tmp_path, options={"output_format": "csv"})
    assert third.status == "success" and status["file_kind"] == "in-network"
    assert sorted(p.name for p in folder.iterdir()) == ["providers.csv", "rates.csv", "status.json"]


def test_run_extraction_holds_an_out_of_network_item_to_max_value_mb(tmp_path: Path) -> None:
    big = {
        "billing_code": "1",
        "allowed_amounts": [
            {"payments": [{"allowed_amount": 1, "providers": [{"npi": list(range(1, 200_000))}]}]}
        ],
    }
    doc = {"version": "2.0.0", "out_of_network": [{"billing_code": "0"}, big]}
    source = write_json(tmp_path / "big.json", doc)  # the second item is about 1.3 MB
    result, status = extract(source, tmp_path, options={"max_value_mb": 1})
    assert result.status == "failed"
    assert "an out_of_network item" in (result.error or "")
    assert "larger than the limit of 1 MB (max_value_mb)" in (result.error or "")
    assert status["output_files"] == {}
    ok, _ = extract(source, tmp_path, options={"max_value_mb": 2})
    assert ok.status == "success", ok.error


# ---------------------------------------------------------------------------------------------
# A run's manifest, files table and database
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_database_views_over_a_run_with_an_allowed_amounts_file(
    tic: Path, tmp_path: Path, output_format: str
) -> None:
    files = {
        "aa1": tic / "v1/allowed-amounts-single-plan-sample.json",
        "aa2": write_json(tmp_path / "in" / "gen.json", allowed_doc(5)),
        "innet": tic / "v2/in-network-rates-no-npi.json",
        "empty": tic / "v1/allowed-amounts-multiple-plan-empty-sample.json",
    }
    layout = make_run(tmp_path, files, output_format=output_format)
    amounts, providers = expected_rows(allowed_doc(5), "aa2")
    assert query(
        layout, "SELECT network_id, count(*) FROM allowed_amounts GROUP BY 1 ORDER BY 1"
    ) == [
        ("aa1", 1),
        ("aa2", len(amounts)),
    ]
    assert query(
        layout, "SELECT sum(allowed_amount) FROM allowed_amounts WHERE network_id = 'aa1'"
    ) == [(25.0,)]
    # docs/output.md: the billed charge once per provider entry
    billed = query(
        layout,
        "SELECT network_id, sum(billed_charge) FROM (SELECT DISTINCT network_id, payment_id, "
        "provider_entry, billed_charge FROM allowed_amount_providers) GROUP BY 1 ORDER BY 1",
    )
    expected_billed = sum(
        e["billed_charge"]
        for item in allowed_doc(5)["out_of_network"]
        for a in item["allowed_amounts"]
        for p in a["payments"]
        for e in p["providers"]
    )
    assert billed[0] == ("aa1", 180.0)
    assert billed[1][0] == "aa2" and billed[1][1] == pytest.approx(expected_billed)
    assert query(layout, "SELECT count(*) FROM allowed_amount_providers") == [(8 + len(providers),)]
    assert query(layout, "SELECT DISTINCT network_id FROM rates") == [("innet",)]
    assert query(
        layout,
        "SELECT service_code, billing_code_modifier FROM allowed_amounts WHERE network_id = 'aa1'",
    ) == [(["01", "02", "03"], ["25"])]
    files_rows = query(
        layout,
        "SELECT network_id, file_kind, allowed_amount_rows, allowed_amount_provider_rows, "
        "allowed_amounts_file IS NOT NULL, rates_file IS NOT NULL FROM files ORDER BY 1",
    )
    assert files_rows == [
        ("aa1", "allowed-amounts", 1, 8, True, False),
        ("aa2", "allowed-amounts", len(amounts), len(providers), True, False),
        ("empty", "allowed-amounts", 0, 0, True, False),
        ("innet", "in-network", 0, 0, False, True),
    ]
    manifest = json.loads(Path(layout.manifest).read_text())
    assert manifest["summary"]["allowed_amount_rows"] == 1 + len(amounts)


def test_database_allowed_amount_views_are_empty_and_typed_without_such_files(
    tic: Path, tmp_path: Path
) -> None:
    layout = make_run(tmp_path, {"innet": tic / "v2/in-network-rates-no-npi.json"})
    assert query(layout, "SELECT count(*) FROM allowed_amounts") == [(0,)]
    described = query(layout, "DESCRIBE allowed_amount_providers")
    assert [(row[0], row[1]) for row in described] == [
        ("network_id", "VARCHAR"),
        ("payment_id", "VARCHAR"),
        ("provider_entry", "BIGINT"),
        ("npi", "BIGINT"),
        ("billed_charge", "DOUBLE"),
    ]
