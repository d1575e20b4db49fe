"""DuckDB views over an output directory's shards: problems, trajectories, steps, start_states,
rollouts, dead_letters. ``trajectories`` adds the problem's prompt and reference answer.

The shards are listed by Python (``Path.glob`` under the directory, whose own name is taken
literally) and handed to DuckDB as Arrow datasets, never as a path for DuckDB to expand: a run
directory named ``exp[1]`` or ``e*`` is read as itself, not as ``exp1`` or every run beginning with
``e``. ``confined=True`` (``prmflow sql --confined``) also switches DuckDB's file access off
(``enable_external_access = false``, locked) except for the run directory itself
(``allowed_directories``), so a query can neither read other files nor ``COPY``/``ATTACH`` elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.dataset as ds

from prmflow.schemas import TABLES


def shard_files(out_dir: str, table: str) -> list[str]:
    """The table's shard files, sorted; ``out_dir`` is a literal path, whatever characters it holds."""
    return sorted(str(p) for p in (Path(out_dir) / table).glob(f"{table}-*.parquet"))


def _dataset(out_dir: str, table: str) -> ds.Dataset:
    files = shard_files(out_dir, table)
    if not files:  # a partial run may lack a table's shards: an empty view, not an error
        return ds.dataset([], schema=TABLES[table][1], format="parquet")
    return ds.dataset(files, format="parquet")


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


def connect(out_dir: str, database: str = ":memory:", partial: bool = False,
            confined: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with one view per table. A missing table is an error naming the directory, and
    so is an incomplete run unless ``partial``. ``confined``: see the module docstring. The views
    read datasets registered on this connection: they live as long as it does (a ``database`` file
    keeps the view definitions, not the data behind them)."""
    check_complete(out_dir, partial)
    con = duckdb.connect(database)
    if confined:
        con.execute("SET allowed_directories = ?", [[str(Path(out_dir).resolve()) + "/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    for table in TABLES:
        con.register(f"_{table}_shards", _dataset(out_dir, table))
    for table in TABLES:
        if table == "trajectories":
            con.execute(
                "CREATE VIEW trajectories AS SELECT t.*, p.prompt, p.reference_answer "
                "FROM _trajectories_shards t LEFT JOIN _problems_shards p USING (problem_id)"
            )
        else:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}_shards")
    return con
