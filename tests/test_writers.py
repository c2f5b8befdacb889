"""TableWriter: row groups, the writer thread, atomic commit and abort."""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrfbatch import writers
from mrfbatch.tables import PROVIDER_COLUMNS, PROVIDERS_SCHEMA
from mrfbatch.writers import TableWriter


def provider_rows(start: int, n: int) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {name: [None] * n for name in PROVIDER_COLUMNS}
    columns["network_id"] = ["net"] * n
    columns["provider_group_id"] = [str(i // 3) for i in range(start, start + n)]
    columns["npi"] = list(range(start, start + n))
    return columns


def test_rows_arrive_in_order_in_row_groups_of_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "providers.parquet"
    writer = TableWriter(path, PROVIDERS_SCHEMA, batch_size=1000)
    for start in range(0, 25_000, 700):  # 700 does not divide 1000: batches straddle groups
        writer.write_columns(
            provider_rows(start, min(700, 25_000 - start)), min(700, 25_000 - start)
        )
    assert not path.exists()  # nothing under the final name before commit
    writer.commit()
    table = pq.read_table(path)
    assert table.column("npi").to_pylist() == list(range(25_000))
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 25
    assert {metadata.row_group(i).num_rows for i in range(25)} == {1000}
    assert writer.rows_written == 25_000
    assert list(tmp_path.iterdir()) == [path]
    # Arrow allocates from the C library's heap, which gives freed memory back (peak RSS).
    assert pa.default_memory_pool().backend_name == "system"


def test_statistics_are_kept_for_what_queries_filter_on(tmp_path: Path) -> None:
    """Each row group's min and max: for ids, codes, types and numbers, which a query filters
    on; not for free text (a business name) or lists."""
    path = tmp_path / "providers.parquet"
    writer = TableWriter(path, PROVIDERS_SCHEMA, batch_size=1000)
    columns = provider_rows(0, 10)
    columns["tin_value"] = ["11-1111111"] * 10
    columns["business_name"] = ["Clinic"] * 10
    columns["network_name"] = [["PPO"]] * 10
    writer.write_columns(columns, 10)
    writer.commit()
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {
        group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)
    }
    assert stats["npi"] is not None and (stats["npi"].min, stats["npi"].max) == (0, 9)
    assert stats["provider_group_id"].has_min_max and stats["tin_value"].max == "11-1111111"
    assert stats["business_name"] is None
    assert stats["network_name.list.element"] is None


def test_a_failed_background_write_fails_commit_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: TableWriter, writer: object, table: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers.TableWriter, "_write_table", disk_full)
    path = tmp_path / "providers.parquet"
    writer = TableWriter(path, PROVIDERS_SCHEMA, batch_size=100)
    with pytest.raises(OSError, match="No space left"):
        for start in range(0, 10_000, 100):  # the error surfaces at a later write or commit
            writer.write_columns(provider_rows(start, 100), 100)
        writer.commit()
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_write_batch_and_write_columns_keep_the_order_rows_are_given_in(tmp_path: Path) -> None:
    path = tmp_path / "providers.parquet"
    writer = TableWriter(path, PROVIDERS_SCHEMA, batch_size=1000)
    for start in range(0, 5_000, 300):  # alternately as Python columns and as Arrow batches
        n = min(300, 5_000 - start)
        if start // 300 % 2:
            writer.write_batch(
                pa.RecordBatch.from_pydict(provider_rows(start, n), PROVIDERS_SCHEMA)
            )
        else:
            writer.write_columns(provider_rows(start, n), n)
    writer.write_batch(pa.RecordBatch.from_pydict(provider_rows(0, 0), PROVIDERS_SCHEMA))
    writer.commit()
    table = pq.read_table(path)
    assert table.schema == PROVIDERS_SCHEMA
    assert table.column("npi").to_pylist() == list(range(5_000))
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1000] * 5
    assert writer.rows_written == 5_000


def test_write_batch_of_another_schema_is_an_error(tmp_path: Path) -> None:
    writer = TableWriter(tmp_path / "providers.parquet", PROVIDERS_SCHEMA, batch_size=100)
    batch = pa.RecordBatch.from_pydict({"npi": [1]})
    with pytest.raises(ValueError, match="a batch of npi: int64 given to a writer of network_id"):
        writer.write_batch(batch)
    writer.abort()
