"""DuckDB views over an output directory's shards: problems, trajectories, steps, start_states,
rollouts, dead_letters. ``trajectories`` adds the problem's prompt and reference answer."""

from __future__ import annotations

from pathlib import Path

import duckdb

from prmflow.schemas import TABLES


def _glob(out_dir: str, table: str) -> str:
    return str(Path(out_dir) / table / f"{table}-*.parquet").replace("'", "''")


SUCCESS = "_SUCCESS"
"""The completion marker ``prmflow.pipelines.output`` writes last when it publishes a run."""


class IncompleteOutput(FileNotFoundError):
    """The directory has tables but no ``_SUCCESS``: a run failed, was killed, or is publishing."""


def check_complete(out_dir: str, partial: bool = False) -> str | None:
    """Refuses a directory that is not a finished prmflow output; with ``partial``, returns the
    warning to show instead of refusing an incomplete one (None when it is complete)."""
    if not (Path(out_dir) / "steps").is_dir():
        if any(Path(out_dir).glob(".prmflow-*")):  # a lock or staging directory: a run began here
            raise IncompleteOutput(
                f"{out_dir!r} holds no finished run yet: a run is writing it, or died before publishing"
            )
        raise FileNotFoundError(f"{out_dir!r} is not a prmflow output (no steps/ directory); run `prmflow run` first")
    if (Path(out_dir) / SUCCESS).is_file():
        return None
    if not partial:
        raise IncompleteOutput(
            f"{out_dir!r} holds an incomplete run (no {SUCCESS}: it failed, was killed, or is being "
            f"published); pass --partial to read it anyway"
        )
    return f"WARNING: {out_dir!r} holds an incomplete run (no {SUCCESS}); its tables may be partial"


def connect(out_dir: str, database: str = ":memory:", partial: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with one view per table. A missing table is an error naming the directory, and
    so is an incomplete run unless ``partial``."""
    check_complete(out_dir, partial)
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
