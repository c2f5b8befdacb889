"""Batched, atomic table writers (Parquet or CSV).

Rows are buffered and written one batch at a time (one Parquet row group per batch) to a
temporary file next to the final one; `finish` completes it there (closed and on disk), then
`publish` renames it into place; `abort` deletes it. So a final name only ever holds a complete
table. An OSError from writing (a full disk) names the temporary file.

Encoding and compressing a row group happens in a writer thread (Arrow releases the GIL), so
it overlaps with parsing; one row group at most is in flight, and its error, if any, is raised
by the next write or by `commit`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mrfbatch.errors import UsageError
from mrfbatch.layout import FORMATS
from mrfbatch.tables import Columns

_TO_ARROW_EVERY = 8192
# Dictionary encoding only where values repeat (codes, types, names): for NPIs, TINs, rates and
# group ids it costs time and makes the file larger.
_NOT_DICTIONARY = frozenset(
    {"negotiated_rate", "provider_group_ids", "provider_group_id", "npi", "tin_value"}
)
# Column statistics (each row group's min and max) let a query skip row groups where it filters
# on codes, types, rates, dates and ids. For free text and lists they cost time (a sixth of the
# encoding of rates.parquet on the small-items bench shape) and no query is pruned by them.
_NO_STATISTICS = frozenset({"name", "description", "additional_information", "business_name"})


class TableWriter:
    """Write rows of `schema` to `path` in row groups of `batch_size` rows.

    Rows arrive as Arrow record batches, or as Python columns turned into record batches every
    few thousand rows: a pending row group is held in Arrow's compact form, not as Python objects.
    """

    def __init__(self, path: Path, schema: pa.Schema, batch_size: int, fmt: str = "parquet"):
        if fmt not in FORMATS:
            raise UsageError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if batch_size < 1:
            raise UsageError(f"batch size must be a positive integer, got {batch_size}")
        # Arrow's own pool (mimalloc) keeps memory it has freed for reuse; the C library's
        # gives it back, which lowered the benchmark's peak RSS by about 30 MB at equal speed.
        # This reaches pyarrow's calls only: Parquet's column writers take Arrow's C++ default
        # pool, which an extraction process chooses before importing pyarrow (lean.set_up).
        pa.set_memory_pool(pa.system_memory_pool())
        self.path = path
        self.tmp_path = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.schema = schema
        self.batch_size = batch_size
        self.fmt = fmt
        self.rows_written = 0
        self._columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._pending = 0  # rows in _columns
        self._batches: list[pa.RecordBatch] = []
        self._batched = 0  # rows in _batches
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"mrfbatch-{path.stem}")
        self._in_flight: Future[None] | None = None

    @property
    def pending(self) -> int:
        """Rows buffered, not yet written."""
        return self._pending + self._batched

    def write_columns(self, columns: Columns, n: int) -> None:
        """Append `n` rows given as columns; full row groups are written as they fill up."""
        for name, values in self._columns.items():
            values.extend(columns[name])
        self._pending += n
        if self._pending >= min(_TO_ARROW_EVERY, self.batch_size):
            self._to_arrow()
        with naming_errors(self.tmp_path):
            while self._batched >= self.batch_size:
                self._write_rows(self.batch_size)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append the rows of an Arrow record batch of `schema`, after any given as columns."""
        if not batch.schema.equals(self.schema):
            raise ValueError(f"a batch of {batch.schema} given to a writer of {self.schema}")
        self._to_arrow()
        if batch.num_rows:
            self._batches.append(batch)
            self._batched += batch.num_rows
        with naming_errors(self.tmp_path):
            while self._batched >= self.batch_size:
                self._write_rows(self.batch_size)

    def flush(self) -> None:
        """Write every buffered row (the last, possibly short, row group)."""
        self._to_arrow()
        with naming_errors(self.tmp_path):
            if self._batched or self._writer is None:
                self._write_rows(self._batched)

    def _to_arrow(self) -> None:
        if self._pending:
            self._batches.append(pa.RecordBatch.from_pydict(self._columns, schema=self.schema))
            self._batched += self._pending
            self._columns = {name: [] for name in self.schema.names}
            self._pending = 0

    def _write_rows(self, n: int) -> None:
        buffered = pa.Table.from_batches(self._batches, schema=self.schema)
        table = buffered.slice(0, n)
        if self.fmt == "parquet":
            if self._writer is None:
                self._writer = pq.ParquetWriter(
                    self.tmp_path,
                    self.schema,
                    compression="zstd",
                    use_dictionary=[c for c in self.schema.names if c not in _NOT_DICTIONARY],
                    write_statistics=[
                        f.name
                        for f in self.schema
                        if f.name not in _NO_STATISTICS and not pa.types.is_nested(f.type)
                    ],
                )
        else:
            table = _json_lists(table)
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self.tmp_path, table.schema)
        self._wait()
        if table.num_rows or self.fmt == "csv":
            self._in_flight = self._thread.submit(self._write_table, self._writer, table)
        self.rows_written += table.num_rows
        self._batches = buffered.slice(n).to_batches()
        self._batched -= n

    def _write_table(self, writer: pq.ParquetWriter | pacsv.CSVWriter, table: pa.Table) -> None:
        if isinstance(writer, pq.ParquetWriter):
            writer.write_table(table, row_group_size=self.batch_size)
        else:
            writer.write_table(table)

    def _wait(self) -> None:
        """Wait for the row group in flight; raise its error."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def finish(self) -> None:
        """Write what is buffered and close: the table is complete, on disk, under tmp_path."""
        self.flush()
        with naming_errors(self.tmp_path):
            self._wait()
            self._thread.shutdown()
            assert self._writer is not None
            self._writer.close()
            self._writer = None
            fd = os.open(self.tmp_path, os.O_RDONLY)
            try:
                os.fsync(fd)  # a full disk may only show here; and the data before the rename
            finally:
                os.close(fd)

    def publish(self) -> Path:
        """Move the finished table to its final name."""
        os.replace(self.tmp_path, self.path)
        return self.path

    def commit(self) -> Path:
        """`finish` and `publish`."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        """Close and delete the temporary file; the final name is left untouched."""
        with contextlib.suppress(Exception):  # already failing; the file is deleted next
            self._wait()
        self._thread.shutdown()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        self.tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def naming_errors(path: Path) -> Iterator[None]:
    """Give an OSError without a file name (Arrow's, a write's) the name of the file written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc


def _json_lists(table: pa.Table) -> pa.Table:
    """CSV has no list type: write list columns as JSON arrays."""
    columns = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_list(field.type):
            col = pa.array(
                [None if v is None else json.dumps(v) for v in col.to_pylist()], type=pa.string()
            )
        columns.append(col)
    return pa.Table.from_arrays(columns, names=table.schema.names)
