"""The run's database (mrfbatch.database) and plans/files tables (mrfbatch.results).

Runs are made of real extractions of written or generated files, with the manifest step the
workflow runs (finish.write_run_manifest); the views are checked against the fixtures and
against the per-file tables read with pyarrow, not with DuckDB.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mrfbatch import results
from mrfbatch.cli import query_main
from mrfbatch.run_extraction import run_extraction
from support import synth
from support.runs import make_run, query

# One in-network file written for these tests: provider references (one a TIN-only contract,
# npi [0]), a rate with inline provider_groups, a rate with both, an unresolved reference, and
# a bundle whose codes are a list of structs (one code without description, its version a
# number).
FIXTURE = {
    "reporting_entity_name": "Fixture Health",
    "reporting_entity_type": "health insurance issuer",
    "plan_name": "Fixture Gold",
    "plan_id_type": "hios",
    "plan_id": "12345",
    "plan_market_type": "individual",
    "last_updated_on": "2026-11-01",
    "version": "1.0.0",
    "provider_references": [
        {
            "provider_group_id": 1,
            "provider_groups": [
                {"npi": [1111111111, 2222222222], "tin": {"type": "ein", "value": "11-1111111"}}
            ],
        },
        {
            "provider_group_id": 2,
            "provider_groups": [{"npi": [0], "tin": {"type": "ein", "value": "22-2222222"}}],
        },
    ],
    "in_network": [
        {
            "negotiation_arrangement": "ffs",
            "name": "Knee",
            "billing_code_type": "CPT",
            "billing_code_type_version": "2026",
            "billing_code": "27447",
            "description": "Total knee arthroplasty",
            "negotiated_rates": [
                {
                    "provider_references": [1, 2],
                    "negotiated_prices": [
                        {
                            "negotiated_type": "negotiated",
                            "negotiated_rate": 1500.0,
                            "expiration_date": "9999-12-31",
                            "billing_class": "professional",
                        }
                    ],
                },
                {
                    "provider_groups": [
                        {"npi": [3333333333], "tin": {"type": "ein", "value": "33-3333333"}}
                    ],
                    "negotiated_prices": [
                        {
                            "negotiated_type": "negotiated",
                            "negotiated_rate": 21000.0,
                            "expiration_date": "9999-12-31",
                            "billing_class": "institutional",
                        }
                    ],
                },
                {
                    "provider_references": [99],
                    "negotiated_prices": [
                        {
                            "negotiated_type": "negotiated",
                            "negotiated_rate": 7.0,
                            "expiration_date": "9999-12-31",
                            "billing_class": "professional",
                        }
                    ],
                },
            ],
        },
        {
            "negotiation_arrangement": "ffs",
            "name": "Office visit",
            "billing_code_type": "CPT",
            "billing_code_type_version": "2026",
            "billing_code": "99213",
            "description": "Office visit",
            "negotiated_rates": [
                {
                    "provider_references": [2],
                    "negotiated_prices": [
                        {
                            "negotiated_type": "negotiated",
                            "negotiated_rate": 90.5,
                            "expiration_date": "9999-12-31",
                            "billing_class": "professional",
                        },
                        {
                            "negotiated_type": "fee schedule",
                            "negotiated_rate": 80.0,
                            "expiration_date": "9999-12-31",
                            "billing_class": "professional",
                        },
                    ],
                }
            ],
        },
        {
            "negotiation_arrangement": "bundle",
            "name": "Knee bundle",
            "billing_code_type": "CSTM-ALL",
            "billing_code_type_version": "2026",
            "billing_code": "KNEE-1",
            "description": "Knee replacement, all services",
            "bundled_codes": [
                {
                    "billing_code_type": "CPT",
                    "billing_code_type_version": "2026",
                    "billing_code": "27447",
                    "description": 'Arthroplasty, knee "total"',
                },
                {"billing_code_type": "RC", "billing_code_type_version": 1, "billing_code": "0360"},
            ],
            "negotiated_rates": [
                {
                    "provider_references": [1],
                    "negotiated_prices": [
                        {
                            "negotiated_type": "negotiated",
                            "negotiated_rate": 30000.0,
                            "expiration_date": "9999-12-31",
                            "billing_class": "institutional",
                        }
                    ],
                }
            ],
        },
    ],
}
# The bundle's bundled_codes as the rates view gives them (DuckDB structs are dicts).
FIXTURE_BUNDLED_CODES = [
    {
        "billing_code_type": "CPT",
        "billing_code_type_version": "2026",
        "billing_code": "27447",
        "description": 'Arthroplasty, knee "total"',
    },
    {
        "billing_code_type": "RC",
        "billing_code_type_version": "1",
        "billing_code": "0360",
        "description": None,
    },
]
# rate_providers of FIXTURE, written from it by hand: (code, rate, npi, tin, provider_source).
# The rate of group 99 has no provider: no row.
FIXTURE_RATE_PROVIDERS = sorted(
    [
        ("27447", 1500.0, 1111111111, "11-1111111", "file"),
        ("27447", 1500.0, 2222222222, "11-1111111", "file"),
        ("27447", 1500.0, 0, "22-2222222", "file"),
        ("27447", 21000.0, 3333333333, "33-3333333", "inline"),
        ("99213", 90.5, 0, "22-2222222", "file"),
        ("99213", 80.0, 0, "22-2222222", "file"),
        ("KNEE-1", 30000.0, 1111111111, "11-1111111", "file"),
        ("KNEE-1", 30000.0, 2222222222, "11-1111111", "file"),
    ]
)


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    path = tmp_path / "files" / "fixture.json.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(json.dumps(FIXTURE).encode()))
    return path


def test_rate_providers_joins_references_inline_groups_and_npi_0(
    tmp_path: Path, fixture_file: Path
) -> None:
    layout = make_run(tmp_path, {"fixture": fixture_file})
    rows = query(
        layout,
        "SELECT billing_code, negotiated_rate, npi, tin_value, provider_source FROM rate_providers",
    )
    assert sorted(rows) == FIXTURE_RATE_PROVIDERS
    # every rate is in `rates`, also the one whose group no reference defines
    assert query(layout, "SELECT count(*) FROM rates") == [(6,)]


def test_the_run_tables_and_their_views_in_both_formats(tmp_path: Path, fixture_file: Path) -> None:
    by_format = {}
    for fmt in ("parquet", "csv"):
        layout = make_run(tmp_path / fmt, {"fixture": fixture_file}, output_format=fmt)
        assert (Path(layout.task_dir("fixture")) / f"rates.{fmt}").is_file()
        by_format[fmt] = {
            view: sorted(query(layout, f"SELECT * FROM {view}"), key=repr)
            for view in ("rates", "providers", "rate_providers")
        }
        # the bundle's codes as a list of structs, in both formats, and unnested in one step
        assert query(layout, "SELECT bundled_codes FROM rates WHERE bundled_codes IS NOT NULL") == [
            (FIXTURE_BUNDLED_CODES,)
        ]
        assert query(
            layout,
            "SELECT code.billing_code, code.description FROM "
            "(SELECT unnest(bundled_codes) AS code FROM rates) ORDER BY 1",
        ) == [("0360", None), ("27447", 'Arthroplasty, knee "total"')]
    assert by_format["csv"] == by_format["parquet"]
    assert len(by_format["csv"]["rate_providers"]) == len(FIXTURE_RATE_PROVIDERS)


def test_views_hold_this_runs_tables_only(tmp_path: Path) -> None:
    files = {}
    for n in range(3):
        sf = synth.generate(
            synth.SynthConfig(
                seed=40 + n, items=10, references=4, inline_groups=True, tin_only=True
            )
        )
        path = tmp_path / "files" / f"net{n}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(sf.to_bytes())
        files[f"net{n}"] = path
    files["gone"] = tmp_path / "files" / "no-such-file.json"  # fails: no tables
    # a stale folder of an earlier run, with tables, in output_dir
    stale = tmp_path / "results" / "stale"
    stale.mkdir(parents=True)
    shutil.copy(files["net0"], tmp_path / "files" / "stale.json")
    run_extraction(
        str(tmp_path / "files" / "stale.json"), str(tmp_path / "results"), network_id="stale"
    )
    layout = make_run(tmp_path, files)

    ran = ["net0", "net1", "net2"]
    tables = {
        name: [pq.read_table(Path(layout.task_dir(n)) / f"{name}.parquet") for n in ran]
        for name in ("rates", "providers")
    }
    for name, parts in tables.items():
        assert query(layout, f"SELECT count(*) FROM {name}") == [(sum(t.num_rows for t in parts),)]
        ids = {row[0] for row in query(layout, f"SELECT DISTINCT network_id FROM {name}")}
        assert ids == set(ran)
    # rate_providers counted with a join written here, over the per-file tables
    expected = 0
    for rates, providers in zip(tables["rates"], tables["providers"], strict=True):
        per_group: dict[str, int] = {}
        for gid in providers.column("provider_group_id").to_pylist():
            per_group[gid] = per_group.get(gid, 0) + 1
        for ids_of_rate in rates.column("provider_group_ids").to_pylist():
            expected += sum(per_group.get(g, 0) for g in ids_of_rate or [])
    assert query(layout, "SELECT count(*) FROM rate_providers") == [(expected,)]
    assert query(layout, "SELECT network_id, status FROM files ORDER BY 1") == [
        ("gone", "failed"),
        ("net0", "success"),
        ("net1", "success"),
        ("net2", "success"),
    ]
    assert query(layout, "SELECT count(*) FROM plans") == [(4,)]


def test_plans_table_takes_source_fields_file_header_and_index_header(
    tmp_path: Path, fixture_file: Path
) -> None:
    plans = {
        "listed": [
            {"Plan Name": "Listed A", "PLAN_ID": "1", "state": "CA", "Version": "mine"},
            {"plan_id": "2", "state": "NV"},
        ]
    }
    extra = {
        "listed": {
            "index_reporting_entity_name": "Index Payer",
            "index_version": "1.1.0",
            "file_description": "PPO rates",
        }
    }
    layout = make_run(
        tmp_path, {"listed": fixture_file, "alone": fixture_file}, plans=plans, extra=extra
    )
    rows = pq.read_table(layout.plans).to_pylist()
    assert [row["network_id"] for row in rows] == ["alone", "listed", "listed"]
    alone, first, second = rows
    # no plan in the source: the file's own header names its plan
    assert (alone["plan_name"], alone["plan_id"], alone["plan_market_type"]) == (
        "Fixture Gold",
        "12345",
        "individual",
    )
    assert alone["state"] is None and alone["index_reporting_entity_name"] is None
    # the source's fields win, a plan field's name written another way included; what it
    # leaves empty comes from the file's header
    assert (first["plan_name"], first["plan_id"], first["state"]) == ("Listed A", "1", "CA")
    assert (second["plan_name"], second["plan_id"], second["state"]) == ("Fixture Gold", "2", "NV")
    for row in (first, second):
        assert row["reporting_entity_name"] == "Fixture Health"
        assert row["reporting_entity_type"] == "health insurance issuer"
        assert (row["last_updated_on"], row["version"]) == ("2026-11-01", "1.0.0")
        assert row["index_reporting_entity_name"] == "Index Payer"
        assert (row["index_version"], row["file_description"]) == ("1.1.0", "PPO rates")
    # a source column named like one of the table's own keeps a prefix (SQL ignores case)
    assert (first["source_Version"], second["source_Version"]) == ("mine", None)
    assert query(layout, "SELECT count(*) FROM plans WHERE network_id = 'listed'") == [(2,)]


@pytest.mark.parametrize("batch_rows", [1, 2, results.PLAN_BATCH_ROWS])
def test_plans_table_gives_a_plan_listing_many_files_each_files_own_fields(
    tmp_path: Path, fixture_file: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    # written a few rows at a time: a column first met in a later batch ("tier") is in all
    monkeypatch.setattr(results, "PLAN_BATCH_ROWS", batch_rows)
    # one plan listed with two files (an index's plan uses many): read back as one dict
    plan = {"plan_id": "9", "region": "west"}
    layout = make_run(
        tmp_path,
        {"one": fixture_file, "two": fixture_file, "three": fixture_file},
        plans={"one": [plan], "two": [plan, {"plan_id": "8", "tier": "gold"}], "three": [plan]},
        extra={"one": {"file_description": "first"}, "two": {"file_description": "second"}},
    )
    rows = pq.read_table(layout.plans).to_pylist()
    picked = [
        (r["network_id"], r["plan_id"], r["region"], r["tier"], r["file_description"]) for r in rows
    ]
    assert picked == [
        ("one", "9", "west", None, "first"),
        ("three", "9", "west", None, None),
        ("two", "9", "west", None, "second"),
        ("two", "8", None, "gold", "second"),
    ]
    assert {r["plan_name"] for r in rows} == {"Fixture Gold"}  # from each file's header
    row_groups = pq.ParquetFile(layout.plans).metadata.num_row_groups
    assert row_groups == {1: 3, 2: 2}.get(batch_rows, 1)  # a file's rows stay in one batch


def test_files_table_is_the_manifest(tmp_path: Path, fixture_file: Path) -> None:
    layout = make_run(
        tmp_path,
        {"fixture": fixture_file, "gone": tmp_path / "missing.json"},
        plans={"fixture": [{"plan_name": "A"}, {"plan_name": "B"}]},
    )
    manifest = json.loads(Path(layout.manifest).read_text())
    by_id = {e["network_id"]: e for e in manifest["extractions"]}
    rows = {row["network_id"]: row for row in pq.read_table(layout.files).to_pylist()}
    assert rows["fixture"]["status"] == "success" and rows["fixture"]["plans"] == 2
    assert rows["fixture"]["rate_rows"] == 6  # the fixture's six prices
    assert rows["fixture"]["rates_file"] == by_id["fixture"]["output_files"]["rates"]
    assert rows["gone"]["status"] == "failed" and rows["gone"]["retryable"] is False
    assert "does not exist" in rows["gone"]["error"]
    assert rows["gone"]["rates_file"] is None and rows["gone"]["rate_rows"] == 0
    # the manifest carries each file's header too
    assert by_id["fixture"]["file_metadata"]["reporting_entity_name"] == "Fixture Health"


def test_a_run_without_tables_has_empty_views_with_every_column(tmp_path: Path) -> None:
    layout = make_run(tmp_path, {"gone": tmp_path / "missing.json"})
    assert query(layout, "SELECT count(*) FROM rates") == [(0,)]
    assert query(layout, "SELECT count(*) FROM rate_providers") == [(0,)]
    columns = [row[0] for row in query(layout, "SELECT column_name FROM (DESCRIBE rates)")]
    assert columns[:4] == [
        "network_id",
        "billing_code_type",
        "billing_code_type_version",
        "billing_code",
    ]
    assert "provider_group_ids" in columns


def test_query_command_prints_a_table_csv_and_clear_errors(
    tmp_path: Path, fixture_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = make_run(tmp_path, {"fixture": fixture_file})
    out_dir = ["--output-dir", layout.output_dir]
    sql = "SELECT billing_code, count(*) AS n FROM rates GROUP BY 1 ORDER BY 1"
    assert query_main([*out_dir, sql]) == 0
    table = capsys.readouterr().out
    assert "billing_code" in table and "27447" in table and "│" in table
    assert query_main([*out_dir, "--csv", sql]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '"billing_code","n"',
        '"27447",3',
        '"99213",2',
        '"KNEE-1",1',
    ]

    assert query_main([*out_dir, "SELECT * FROM ratez"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the query failed: ") and "ratez" in err and "rates" in err
    assert query_main(["--output-dir", str(tmp_path / "nowhere"), "FROM rates"]) == 1
    err = capsys.readouterr().err
    assert "no database at" in err and "nowhere" in err
    # read-only: the database is never changed by a query
    assert query_main([*out_dir, "DROP VIEW rates"]) == 1
    assert query(layout, "SELECT count(*) FROM rates") == [(6,)]
