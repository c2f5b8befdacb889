"""SQL on a run's database from the shell: `mrfbatch-query "SELECT ..."`.

    mrfbatch-query "SELECT billing_code, count(*) FROM rates GROUP BY ALL"
    mrfbatch-query --output-dir results --csv "FROM plans" > plans.csv

The database (`{output_dir}/mrfbatch.duckdb`, mrfbatch.database) is opened read-only, so a
query never changes it and several can run at once. Errors are raised; mrfbatch.cli prints
them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from mrfbatch.errors import UsageError
from mrfbatch.layout import DEFAULT_OUTPUT_DIR, RunLayout


def database_path(output_dir: str | None, database: str | None) -> str:
    """The database to open: `database` if given, else the one in `output_dir`."""
    return database or RunLayout(output_dir or DEFAULT_OUTPUT_DIR).database


def open_database(path: str) -> Any:
    """A read-only connection to a run's database; UsageError when there is none."""
    if not Path(path).is_file():
        raise UsageError(
            f"no database at {path}: a workflow run writes it at its end (or give "
            "--output-dir DIR, the run's output_dir, or --database FILE)"
        )
    try:
        return duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise UsageError(f"cannot open {path}: {exc}") from exc


def run_query(con: Any, sql: str, out: TextIO, csv: bool = False, max_rows: int = 40) -> None:
    """Write the result of `sql` to `out` as a readable table (or CSV with a header);
    UsageError when DuckDB refuses the SQL."""
    if not sql.strip():
        raise UsageError("the SQL is empty; expected a query such as 'FROM files'")
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, PRAGMA)
            return
        if csv:
            data = io.BytesIO()
            pacsv.write_csv(_flat(relation.to_arrow_table()), data)
            out.write(data.getvalue().decode("utf-8"))
            return
        width = shutil.get_terminal_size((160, 24)).columns if out.isatty() else 160
        with contextlib.redirect_stdout(out):  # DuckDB's table drawing prints
            relation.show(max_width=width, max_rows=max_rows)
    except duckdb.Error as exc:
        raise UsageError(f"the query failed: {exc}") from exc


def _flat(table: pa.Table) -> pa.Table:
    """CSV has no lists or structs: such columns as JSON text (as the CSV tables hold them)."""
    for n, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            values = [None if v is None else json.dumps(v) for v in table.column(n).to_pylist()]
            table = table.set_column(n, field.name, pa.array(values, pa.string()))
    return table


if __name__ == "__main__":
    from mrfbatch.cli import query_main

    sys.exit(query_main())
