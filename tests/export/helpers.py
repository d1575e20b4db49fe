"""Reading an export back: its files, its card's front matter, and SQL over the run it came from."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import yaml

from prmflow.export import ExportConfig, export


def do_export(run: Path, out: Path, **options) -> Path:
    export(str(run), str(out), ExportConfig(**options))
    return out


def rows(out: Path, split: str) -> list[dict]:
    """A split's rows; [] when the export wrote no file for it (an empty split is not written)."""
    parquet, jsonl = out / f"{split}.parquet", out / f"{split}.jsonl"
    if parquet.exists():
        return pq.read_table(parquet).to_pylist()
    if not jsonl.exists():
        return []
    return [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]


def truncated(labels: list) -> list:
    """The first-error convention written by hand: up to and including the first 0."""
    return labels[: labels.index(0.0) + 1] if 0.0 in labels else list(labels)


def all_rows(out: Path) -> list[dict]:
    return rows(out, "train") + rows(out, "validation")


def card(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])["prmflow_export"]


def sql(run: Path, query: str) -> list[tuple]:
    con = duckdb.connect()
    for table in ("problems", "trajectories", "steps", "start_states"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{run}/{table}/*.parquet')")
    return con.execute(query).fetchall()


def labels_by_trajectory(run: Path, expr: str, where: str = "true") -> dict[str, list[float]]:
    """trajectory_id -> the per-step values of ``expr``, for trajectories where every step has one."""
    return {t: list(v) for t, v in sql(run, f"""
        SELECT trajectory_id, list(({expr})::DOUBLE ORDER BY step_index) FROM steps
        WHERE trajectory_id IN (SELECT trajectory_id FROM steps GROUP BY trajectory_id
                                HAVING count({expr}) = count(*) AND bool_and({where}))
        GROUP BY trajectory_id""")}
