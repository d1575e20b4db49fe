"""Writers: Parquet with the format's explicit schema (zstd), or JSONL (UTF-8, one object a line)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prmflow.schemas.version import SCHEMA_VERSION


def write_parquet(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)  # a row that does not fit the schema raises here
    table = table.replace_schema_metadata({b"prmflow.schema_version": str(SCHEMA_VERSION).encode()})
    pq.write_table(table, path, compression="zstd")


def write_jsonl(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    pa.Table.from_pylist(rows, schema=schema)  # the same check as Parquet: every row fits the declared columns
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps({name: row[name] for name in schema.names}, ensure_ascii=False, allow_nan=False))
            f.write("\n")


WRITERS = {"parquet": write_parquet, "jsonl": write_jsonl}
