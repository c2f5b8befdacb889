"""A run's analysis outputs (database, plans and files tables, report), made by real Snakemake
runs against files served on 127.0.0.1, checked against the per-file tables and the fixtures."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from support.workflows import WHITELIST, manifest, snakemake

pytestmark = pytest.mark.workflow

VIEWS = ("rates", "providers", "rate_providers", "plans", "files")


def counts(output_dir: Path) -> dict[str, int]:
    with duckdb.connect(str(output_dir / "mrfbatch.duckdb"), read_only=True) as con:
        return {
            view: con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0] for view in VIEWS
        }


def read_table(path: Path) -> list[dict[str, Any]]:
    """A task's table, Parquet or CSV (list columns as JSON arrays), with pyarrow or csv."""
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    with path.open(newline="", encoding="utf-8") as f:
        return [
            {k: json.loads(v) if k == "provider_group_ids" and v else v for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def expected_counts(
    output_dir: Path, network_ids: list[str], fmt: str, plans: int
) -> dict[str, int]:
    """The views' row counts computed from the per-file tables of `network_ids`."""
    rates = providers = joined = 0
    for network_id in network_ids:
        rate_rows = read_table(output_dir / network_id / f"rates.{fmt}")
        provider_rows = read_table(output_dir / network_id / f"providers.{fmt}")
        per_group: dict[str, int] = {}
        for row in provider_rows:
            per_group[row["provider_group_id"]] = per_group.get(row["provider_group_id"], 0) + 1
        rates += len(rate_rows)
        providers += len(provider_rows)
        joined += sum(
            per_group.get(g, 0) for row in rate_rows for g in row["provider_group_ids"] or []
        )
    return {
        "rates": rates,
        "providers": providers,
        "rate_providers": joined,
        "plans": plans,
        "files": len(network_ids) + 1,  # and the failed one
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_runs_views_cover_its_tables_only(
    served: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    urls = served["urls"]
    missing = served["server"].base_url + "/mrf/missing.json.gz"  # 404
    # an earlier run into the same output_dir, of another source: its folder stays on disk
    (tmp_path / "old.txt").write_text(f"{urls['beta']}\n")
    proc = snakemake(tmp_path, "source=urls", "input=old.txt", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "results" / "beta" / "rates.parquet").is_file()

    (tmp_path / "plans.csv").write_text(
        "file_url,plan_name,state\n"
        f"{urls['alpha']},Plan A,CA\n{urls['alpha']},Plan A2,NV\n{missing},Plan M,TX\n"
    )
    proc = snakemake(
        tmp_path, "source=csv", "input=plans.csv", "cpt_whitelist=codes.txt", f"format={fmt}"
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the 404
    output_dir = tmp_path / "results"
    assert counts(output_dir) == expected_counts(output_dir, ["alpha"], fmt, plans=3)
    with duckdb.connect(str(output_dir / "mrfbatch.duckdb"), read_only=True) as con:
        ids = con.execute("SELECT DISTINCT network_id FROM rate_providers").fetchall()
        plans = con.execute("SELECT network_id, plan_name, state FROM plans ORDER BY 2").fetchall()
    assert ids == [("alpha",)]  # not beta, the earlier run's
    assert plans == [
        ("alpha", "Plan A", "CA"),
        ("alpha", "Plan A2", "NV"),
        ("missing", "Plan M", "TX"),
    ]
    # the report of a run with a failure: written by the run's end, one figure per code found
    page = (output_dir / "report.html").read_text(encoding="utf-8")
    assert "missing" in page and "HTTP 404" in page
    found = {row["billing_code"] for row in read_table(output_dir / "alpha" / f"rates.{fmt}")}
    figures = sorted(p.stem for p in (output_dir / "figures").glob("*.svg"))
    assert len(figures) == len(found & set(WHITELIST)) > 0
    assert page.count("<svg") == len(figures)
    assert {e["network_id"]: e["status"] for e in manifest(tmp_path)["extractions"]} == {
        "alpha": "success",
        "missing": "failed",
    }


def test_an_index_runs_plans_carry_the_index_header(served: dict[str, Any], tmp_path: Path) -> None:
    plan = {
        "plan_name": "Gold",
        "plan_id": "12",
        "plan_id_type": "ein",
        "plan_market_type": "group",
    }
    index = {
        "reporting_entity_name": "Index Payer",
        "reporting_entity_type": "health insurance issuer",
        "last_updated_on": "2026-11-30",
        "version": "1.1.0",
        "reporting_structure": [
            {
                "reporting_plans": [plan],
                "in_network_files": [
                    {"description": "PPO rates", "location": served["urls"]["alpha"]}
                ],
            }
        ],
    }
    (tmp_path / "index.json.gz").write_bytes(gzip.compress(json.dumps(index).encode()))
    proc = snakemake(tmp_path, "source=index", "input=index.json.gz", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = pq.read_table(tmp_path / "results" / "plans.parquet").to_pylist()
    header = served["files"]["alpha"].document  # the in-network file's own header
    assert {k: row[k] for k in plan} == plan
    assert (row["reporting_entity_name"], row["version"]) == (
        header["reporting_entity_name"],
        header["version"],
    )
    assert (row["index_reporting_entity_name"], row["index_reporting_entity_type"]) == (
        "Index Payer",
        "health insurance issuer",
    )
    assert (row["index_last_updated_on"], row["index_version"]) == ("2026-11-30", "1.1.0")
    assert row["file_description"] == "PPO rates"
