"""The run's DuckDB database, `{output_dir}/mrfbatch.duckdb`: views over this run's tables.

The database holds no data, only views that read the Parquet (or CSV) files in place, so it is
written in a moment however large the run, and a query reads only the columns and row groups
it needs. The views list the exact files of the run's successful and incomplete tasks (from
the manifest), never a glob: folders of earlier runs in `output_dir` are in no view.

    rates           one row per negotiated price (every task's rates table)
    providers       one row per (provider group, NPI) (every task's providers table)
    allowed_amounts one row per out-of-network payment (allowed-amounts files' tables)
    allowed_amount_providers
                    one row per (payment, provider entry, NPI) with its billed charge
    rate_providers  rates joined to their provider groups' NPIs and TINs: one row per rate
                    and provider row of a group it lists
    plans           one row per (network id, plan): plan fields, the payer (plans.parquet)
    files           one row per task: status, counts, why it failed (files.parquet)

File paths are absolute: open the database from any folder, but move `output_dir` and the
views point at the old place (the next run writes them again).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mrfbatch.layout import TABLES, RunLayout
from mrfbatch.tables import TABLE_SCHEMAS

# Statuses whose tables are on disk (an incomplete task's lack only some provider rows).
WITH_TABLES = ("success", "incomplete")

VIEW_COMMENTS = {
    "rates": "one row per negotiated price of the run's files (docs/output.md)",
    "providers": "one row per (provider group, NPI) of the run's files",
    "rate_providers": "rates joined to the NPIs and TINs of their provider groups",
    "allowed_amounts": "one row per out-of-network payment of the run's allowed-amounts files",
    "allowed_amount_providers": "one row per (payment, provider entry, NPI): billed charges",
    "plans": "one row per (network_id, plan): plan fields and the payer",
    "files": "one row per file of the run: status, counts, errors",
}

# The join every analyst needs: a rate lists provider group ids; each group has one row per
# NPI (0 for a contract with the TIN only). A rate whose groups have no provider rows
# (unresolved references, a remote reference file that failed) is in `rates` only.
RATE_PROVIDERS_SQL = """
SELECT r.*, p.npi, p.tin_type, p.tin_value, p.business_name, p.network_name,
       p.source AS provider_source
FROM (SELECT * EXCLUDE (provider_group_ids), unnest(provider_group_ids) AS provider_group_id
      FROM rates) AS r
JOIN providers AS p ON p.network_id = r.network_id AND p.provider_group_id = r.provider_group_id
"""


def table_paths(entries: Iterable[Mapping[str, Any]], table: str) -> list[str]:
    """The absolute paths of `table` ("rates", "providers", "allowed_amounts", ...) of tasks
    that have tables."""
    paths = []
    for entry in entries:
        path = (entry.get("output_files") or {}).get(table)
        if entry.get("status") in WITH_TABLES and path:
            paths.append(os.path.abspath(path))
    return paths


def build_database(layout: RunLayout, entries: Sequence[Mapping[str, Any]]) -> str:
    """Write the run's database atomically (a temporary file, then a rename); its path.

    `entries` are the manifest's extractions; plans.parquet and files.parquet must exist. A
    file DuckDB cannot write (a full disk) is an OSError naming the database.
    """
    target = Path(layout.database)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        _write_views(layout, entries, tmp)
        os.replace(tmp, target)
        Path(f"{target}.wal").unlink(missing_ok=True)  # a killed earlier write's log
    except duckdb.Error as exc:
        reason = next((text for text in _OS_ERRORS if text in str(exc)), None)
        if reason is None:
            raise
        raise OSError(_OS_ERRORS[reason], reason, str(target)) from exc
    finally:
        _remove(tmp)
    return str(target)


# The system errors DuckDB reports by their text alone (its exceptions carry no errno).
_OS_ERRORS = {os.strerror(code): code for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)}


def _write_views(layout: RunLayout, entries: Sequence[Mapping[str, Any]], tmp: Path) -> None:
    with duckdb.connect(str(tmp)) as con:
        views = {
            table: table_sql(TABLE_SCHEMAS[table], table_paths(entries, table)) for table in TABLES
        }
        views.update(
            rate_providers=RATE_PROVIDERS_SQL,
            plans=f"SELECT * FROM read_parquet({_absolute(layout.plans)})",
            files=f"SELECT * FROM read_parquet({_absolute(layout.files)})",
        )
        for name, sql in views.items():
            con.execute(f"CREATE VIEW {name} AS {sql}")
            con.execute(f"COMMENT ON VIEW {name} IS {_literal(VIEW_COMMENTS[name])}")
        con.execute("CHECKPOINT")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def table_sql(schema: pa.Schema, paths: Sequence[str]) -> str:
    """A SELECT over the tables at `paths` with the columns and types of `schema`.

    Parquet files are read as they are; CSV files (`format: csv`) with every column's type
    given, and their list columns (JSON arrays in CSV) made lists again, so a view's rows are
    the same in both formats. No file: an empty SELECT with the same columns.
    """
    parquet = [p for p in paths if not p.endswith(".csv")]
    csv = [p for p in paths if p.endswith(".csv")]
    parts = []
    if parquet:
        parts.append(f"SELECT * FROM read_parquet({_list(parquet)})")
    if csv:
        parts.append(_csv_sql(schema, csv))
    if not parts:
        columns = ", ".join(f"CAST(NULL AS {duck_type(f.type)}) AS {f.name}" for f in schema)
        return f"SELECT {columns} WHERE false"
    return "\nUNION ALL BY NAME\n".join(parts)


def _csv_sql(schema: pa.Schema, paths: Sequence[str]) -> str:
    # A CSV list column is text: its type is VARCHAR until from_json makes it a list again
    # (of strings, or of structs for bundled_codes and covered_services).
    types = ", ".join(
        f"{_literal(f.name)}: {_literal('VARCHAR' if _is_list(f) else duck_type(f.type))}"
        for f in schema
    )
    columns = ", ".join(
        f"CAST(from_json({f.name}, {_literal(json_structure(f.type))}) AS {duck_type(f.type)})"
        f" AS {f.name}"
        if _is_list(f)
        else f.name
        for f in schema
    )
    # A quoted empty string is a value; only an empty unquoted cell is null (pyarrow writes
    # them so).
    return (
        f"SELECT {columns} FROM read_csv({_list(paths)}, header = true, "
        f"columns = {{{types}}}, allow_quoted_nulls = false, auto_detect = false)"
    )


def _is_list(field: pa.Field) -> bool:
    return bool(pa.types.is_list(field.type))


def duck_type(kind: pa.DataType) -> str:
    """The DuckDB type of a column type the run's tables use.

    >>> duck_type(pa.list_(pa.struct([("a", pa.string())])))
    'STRUCT("a" VARCHAR)[]'
    """
    if pa.types.is_list(kind):
        return f"{duck_type(kind.value_type)}[]"
    if pa.types.is_struct(kind):
        members = ", ".join(f'"{f.name}" {duck_type(f.type)}' for f in kind)
        return f"STRUCT({members})"
    names = {
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.int64(): "BIGINT",
        pa.bool_(): "BOOLEAN",
    }
    return names[kind]


def json_structure(kind: pa.DataType) -> str:
    """The structure DuckDB's from_json takes to read a column of `kind` from JSON text.

    >>> json_structure(pa.list_(pa.struct([("a", pa.string())])))
    '[{"a":"VARCHAR"}]'
    """
    if pa.types.is_list(kind):
        return f"[{json_structure(kind.value_type)}]"
    if pa.types.is_struct(kind):
        return "{" + ",".join(f"{json.dumps(f.name)}:{json_structure(f.type)}" for f in kind) + "}"
    return json.dumps(duck_type(kind))


def _absolute(path: str) -> str:
    return _literal(os.path.abspath(path))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(_literal(p) for p in paths) + "]"
