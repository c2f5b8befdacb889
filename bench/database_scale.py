"""How the run's database scales with the number of files: `python bench/database_scale.py N`.

Writes N small rates/providers tables (50 rate rows, 4 provider rows each) into a temporary
folder, builds the run's database over them as the workflow does (mrfbatch.database), and
times a few queries, each in a fresh connection (opening the database included), and the
report (report.html and its figures, no whitelist: the 10 most frequent codes). Prints one
line per step; nothing is compared with a threshold.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mrfbatch.database import build_database
from mrfbatch.layout import RunLayout
from mrfbatch.report import write_report
from mrfbatch.results import files_table, write_plans, write_table
from mrfbatch.tables import PROVIDERS_SCHEMA, RATES_SCHEMA

QUERIES = (
    "SELECT count(*) FROM rates",
    "SELECT billing_code, median(negotiated_rate) FROM rates GROUP BY 1",
    "SELECT count(*) FROM rate_providers WHERE billing_code = '27447'",
)


def write_tables(folder: str, network_id: str, rng: random.Random) -> dict[str, str]:
    rows = 50
    rates: dict[str, list[object]] = {f.name: [None] * rows for f in RATES_SCHEMA}
    rates["network_id"] = [network_id] * rows
    rates["billing_code"] = [rng.choice(["27447", "99213", "J1885"]) for _ in range(rows)]
    rates["negotiated_rate"] = [round(rng.uniform(20, 30000), 2) for _ in range(rows)]
    rates["provider_group_ids"] = [["1", "2"]] * rows
    providers: dict[str, list[object]] = {f.name: [None] * 4 for f in PROVIDERS_SCHEMA}
    providers.update(
        network_id=[network_id] * 4, provider_group_id=["1", "1", "2", "2"], npi=[1, 2, 3, 4]
    )
    paths = {"rates": f"{folder}/rates.parquet", "providers": f"{folder}/providers.parquet"}
    pq.write_table(pa.Table.from_pydict(rates, schema=RATES_SCHEMA), paths["rates"])
    pq.write_table(pa.Table.from_pydict(providers, schema=PROVIDERS_SCHEMA), paths["providers"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=int, nargs="?", default=5000)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        layout = RunLayout(tmp)
        entries = []
        for n in range(args.files):
            folder = layout.task_dir(f"n{n}")
            os.makedirs(folder)
            output = write_tables(folder, f"n{n}", rng)
            entries.append({"network_id": f"n{n}", "status": "success", "output_files": output})
        write_table(files_table(entries), layout.files)
        write_plans([], {}, layout.plans)
        start = time.perf_counter()
        build_database(layout, entries)
        print(f"{args.files:,} files: database written in {time.perf_counter() - start:.2f} s")
        for sql in QUERIES:
            start = time.perf_counter()
            with duckdb.connect(layout.database, read_only=True) as con:
                con.execute(sql).fetchall()
            print(f"{time.perf_counter() - start:.2f} s  {sql}")
        manifest = {"extractions": entries, "summary": {"successful": len(entries)}}
        start = time.perf_counter()
        with duckdb.connect(layout.database, read_only=True) as con:
            figures = write_report(con, manifest, None, layout.report, layout.figures)
        print(f"{time.perf_counter() - start:.2f} s  report.html with {len(figures)} figures")


if __name__ == "__main__":
    main()
