"""Parquet shards with an explicit schema and reproducible contents.

Beam's WriteToParquet spreads rows over shards at random; here a row goes to shard
``int(id, 16) % num_shards`` and is sorted by id within it, so the same input gives byte-for-byte the
same rows in the same files. Each shard is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from prmflow.sources.base import clean_text

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}


def shard_path(out_dir: str, table: str, shard: int, num_shards: int) -> str:
    return FileSystems.join(out_dir, table, f"{table}-{shard:05d}-of-{num_shards:05d}.parquet")


def write_rows(path: str, rows: list[dict], schema: pa.Schema) -> dict:
    """Write one Parquet file atomically; returns its stats for the manifest."""
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except UnicodeEncodeError:
        # a lone surrogate that got past the sources' cleaning (they replace them at the edge): the
        # shard is still written, with U+FFFD in its place, rather than the job failing at the end
        table = pa.Table.from_pylist([_without_surrogates(r) for r in rows], schema=schema)
    tmp = path + ".tmp"
    with FileSystems.create(tmp) as f:
        pq.write_table(table, f, **PARQUET_OPTIONS)
    FileSystems.rename([tmp], [path])
    return {"path": path, "rows": table.num_rows}


def _without_surrogates(value):
    if isinstance(value, str):
        return clean_text(value)[0]
    if isinstance(value, dict):
        return {k: _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_surrogates(v) for v in value]
    return value


class WriteTable(beam.PTransform):
    """Rows (dicts) -> ``out_dir/table/table-SSSSS-of-NNNNN.parquet``; outputs one stats dict per shard."""

    def __init__(self, out_dir: str, table: str, schema: pa.Schema, id_column: str, num_shards: int) -> None:
        super().__init__(label=f"Write[{table}]")
        self.out_dir, self.table, self.schema = out_dir, table, schema
        self.id_column, self.num_shards = id_column, num_shards

    def expand(self, rows):
        return (
            rows
            | "KeyByShard" >> beam.Map(lambda r, n=self.num_shards, c=self.id_column: (int(r[c], 16) % n, r))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.MapTuple(self._write)
        )

    def _write(self, shard: int, rows) -> dict:
        ordered = sorted(rows, key=lambda r: r[self.id_column])
        stats = write_rows(shard_path(self.out_dir, self.table, shard, self.num_shards), ordered, self.schema)
        return {"table": self.table, "shard": shard, **stats}


def write_empty_shards(out_dir: str, table: str, schema: pa.Schema, num_shards: int, written: set[int]) -> list[dict]:
    """Shards that received no row still get a file, so every table always has its N files and
    DuckDB can read an empty table's schema."""
    return [
        {"table": table, "shard": s, **write_rows(shard_path(out_dir, table, s, num_shards), [], schema)}
        for s in range(num_shards)
        if s not in written
    ]
