"""DuckDB views over an output directory's shards: problems, trajectories, steps, start_states,
rollouts, dead_letters. ``trajectories`` adds the problem's prompt and reference answer."""

from __future__ import annotations

from pathlib import Path

import duckdb

from prmflow.schemas import TABLES


def _glob(out_dir: str, table: str) -> str:
    return str(Path(out_dir) / table / f"{table}-*.parquet").replace("'", "''")


def connect(out_dir: str, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A connection with one view per table. A missing table is an error naming the directory."""
    if not (Path(out_dir) / "steps").is_dir():
        raise FileNotFoundError(f"{out_dir!r} is not a prmflow output (no steps/ directory); run `prmflow run` first")
    con = duckdb.connect(database)
    for table in TABLES:
        source = f"read_parquet('{_glob(out_dir, table)}')"
        if table == "trajectories":
            con.execute(
                f"CREATE VIEW trajectories AS SELECT t.*, p.prompt, p.reference_answer "
                f"FROM {source} t LEFT JOIN read_parquet('{_glob(out_dir, 'problems')}') p USING (problem_id)"
            )
        else:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source}")
    return con
