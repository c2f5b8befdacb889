"""The run's own tables, beside the manifest: `plans.parquet` and `files.parquet`.

They answer "which plan, which payer, which file" in SQL (mrfbatch.database puts views over
them): plans.parquet has one row per (network id, plan) with every plan field the source gave
and the payer's header from the file and the index; files.parquet is the manifest as a table,
one row per task. Both cover exactly the tasks of the run's tasks.tsv.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mrfbatch.layout import TABLES
from mrfbatch.manifest import COUNTS
from mrfbatch.tasks import Task

log = logging.getLogger(__name__)

# Plan fields of the CMS schemas, first in plans.parquet whatever the source gave. A field the
# source leaves empty is taken from the file's own header (a single-plan file names its plan).
PLAN_FIELDS = (
    "plan_name",
    "plan_id",
    "plan_id_type",
    "plan_market_type",
    "issuer_name",
    "plan_sponsor_name",
)
# The in-network file's header (status.json file_metadata).
FILE_HEADER = ("reporting_entity_name", "reporting_entity_type", "last_updated_on", "version")
# An index source's header and the file's description there (the task's extra_args).
INDEX_FIELDS = (
    "index_reporting_entity_name",
    "index_reporting_entity_type",
    "index_last_updated_on",
    "index_version",
    "file_description",
)
_RESERVED = frozenset({"network_id", *FILE_HEADER, *INDEX_FIELDS})
SOURCE_PREFIX = "source_"  # a source column named like a reserved column gets this prefix

TEXT_LIST = pa.list_(pa.string())
FILES_SCHEMA = pa.schema(
    [
        ("network_id", pa.string()),
        ("url", pa.string()),
        ("file_kind", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("retryable", pa.bool_()),
        ("incomplete", TEXT_LIST),
        ("warnings", TEXT_LIST),
        ("plans", pa.int64()),
        ("duration_seconds", pa.float64()),
        *((name, pa.int64()) for name in COUNTS),
        ("log_file", pa.string()),
        *((f"{table}_file", pa.string()) for table in TABLES),  # its path, or null
    ]
)


PLAN_BATCH_ROWS = 65_536  # rows of plans.parquet built at a time (and its row groups)
_NO_PLAN: tuple[dict[str, Any], ...] = ({},)  # a task whose source gave no plan has one row


def write_plans(tasks: Sequence[Task], entries: Mapping[str, Mapping[str, Any]], path: str) -> None:
    """Write plans.parquet atomically: one row per (network id, plan); a task whose source gave
    no plan has one row.

    `entries` are the manifest's extractions by network id (`file_metadata`: the file's
    header, when it was read). Every column is a string: plan fields as the source gave them
    (other JSON values as JSON text), the file's header, the index's header. Written
    PLAN_BATCH_ROWS rows at a time: an index's run may list millions of plan-file pairs (1.5
    million took 830 MB as one table, 250 MB so).
    """
    schema, batches = _plan_batches(tasks, entries)

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)

    _atomically(path, write)


def _plan_batches(
    tasks: Sequence[Task], entries: Mapping[str, Mapping[str, Any]]
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """plans.parquet's schema (its plan columns in the order they are first met) and its rows,
    PLAN_BATCH_ROWS or so at a time."""
    # by id: a plan that lists many files is one dict in all their tasks (read_tasks)
    converted: dict[int, tuple[dict[str, Any], dict[str, str | None]]] = {}

    def fields_of(plan: dict[str, Any]) -> dict[str, str | None]:
        known = converted.get(id(plan))
        if known is None or known[0] is not plan:
            fields = {_column(key): _text(value) for key, value in plan.items()}
            known = converted[id(plan)] = (plan, fields)
        return known[1]

    met = dict.fromkeys(PLAN_FIELDS)
    for task in tasks:
        for plan in task.plan_metadata:
            met.update(dict.fromkeys(fields_of(plan)))
    plan_columns = list(met)
    names = ["network_id", *plan_columns, *FILE_HEADER, *INDEX_FIELDS]
    schema = pa.schema([(name, pa.string()) for name in names])

    def batch(columns: dict[str, list[str | None]]) -> pa.RecordBatch:
        return pa.record_batch([pa.array(columns[name], pa.string()) for name in names], schema)

    def batches() -> Iterator[pa.RecordBatch]:
        columns: dict[str, list[str | None]] = {name: [] for name in names}
        for task in tasks:
            header = entries.get(task.network_id, {}).get("file_metadata") or {}
            fields = [fields_of(plan) for plan in task.plan_metadata or _NO_PLAN]
            for name in plan_columns:
                fallback = _text(header.get(name)) if name in PLAN_FIELDS else None
                columns[name].extend(
                    fallback if (value := one.get(name)) is None else value for one in fields
                )
            fixed = {key: _text(header.get(key)) for key in FILE_HEADER}
            fixed.update({key: _text(task.extra_args.get(key)) for key in INDEX_FIELDS})
            fixed["network_id"] = task.network_id
            for name, value in fixed.items():
                columns[name].extend([value] * len(fields))
            if len(columns["network_id"]) >= PLAN_BATCH_ROWS:
                yield batch(columns)
                columns = {name: [] for name in names}
        if columns["network_id"]:
            yield batch(columns)

    return schema, batches()


def _column(key: str) -> str:
    """A source field's column: a plan field's name when it is one written another way
    (`Plan Name`, `PLAN_ID`), else its own name, prefixed when plans.parquet uses that name
    itself (SQL compares column names ignoring case)."""
    folded = re.sub(r"[\s-]+", "_", key.strip()).lower()
    if folded in PLAN_FIELDS:
        return folded
    if folded in _RESERVED or folded.startswith(SOURCE_PREFIX):
        return SOURCE_PREFIX + key
    return key


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def files_table(entries: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The manifest's extractions as a table (FILES_SCHEMA), in their order."""

    def column(name: str) -> list[Any]:
        return [entry.get(name) for entry in entries]

    def output(table: str) -> list[str | None]:
        return [(entry.get("output_files") or {}).get(table) for entry in entries]

    def texts(name: str) -> list[list[str]]:
        return [[str(v) for v in entry.get(name) or []] for entry in entries]

    data: dict[str, list[Any]] = {
        name: column(name) for name in FILES_SCHEMA.names if name not in _DERIVED
    }
    data.update(
        incomplete=texts("incomplete"),
        warnings=texts("warnings"),
        plans=[len(entry.get("plan_metadata") or ()) for entry in entries],
        **{f"{table}_file": output(table) for table in TABLES},
    )
    return pa.Table.from_pydict(data, schema=FILES_SCHEMA)


_DERIVED = frozenset({"incomplete", "warnings", "plans", *(f"{table}_file" for table in TABLES)})


def write_table(table: pa.Table, path: str) -> None:
    """Write a Parquet file atomically (a temporary name beside it, then a rename)."""
    _atomically(path, lambda tmp: pq.write_table(table, tmp))


def _atomically(path: str, write: Callable[[Path], None]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
