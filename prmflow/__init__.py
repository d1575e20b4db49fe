"""prmflow: step-level pseudo-labels for process reward models, on Apache Beam, vLLM and DuckDB.

From Python (docs/python-api.md)::

    import prmflow

    manifest = prmflow.run("examples/my-chat-model.yaml", output="out/my-run")   # or a dict config
    con = prmflow.connect("out/my-run")                                        # DuckDB views
    con.execute("SELECT avg(outcome) FROM trajectories").fetchone()
    prmflow.export("out/my-run", "out/my-trl", format="trl")                  # a trainer's files

Everything is imported when first used: ``import prmflow`` costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import duckdb


def run(config: dict | str | Path, output: str | Path | None = None, *, fresh: bool = False,
        beam_args: list[str] | tuple[str, ...] = ()) -> dict:
    """Run a labeling pipeline, as ``prmflow run`` does; returns the run's manifest (counts,
    reconciliation, timings). ``config`` is a YAML file's path or the same mapping as a dict
    (validated the same way: a bad key raises ``prmflow.config.ConfigError`` naming it, before any
    work). ``output`` overrides ``output.dir``; ``beam_args`` are Beam pipeline flags, e.g.
    ``["--direct_num_workers", "2"]``. Relative paths are resolved against the current directory."""
    from prmflow.config import load_config, parse_config
    from prmflow.pipelines.label import run_config

    parsed = parse_config(config) if isinstance(config, dict) else load_config(config)
    return run_config(parsed, None if output is None else str(output), list(beam_args), fresh=fresh)


def connect(run_dir: str | Path, partial: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table of a finished run (problems, trajectories, steps,
    start_states, rollouts, dead_letters), as ``prmflow sql`` queries them. ``partial`` reads a run
    without ``_SUCCESS`` (failed, killed, unfinished)."""
    from prmflow.analysis.views import connect as views_connect

    return views_connect(str(run_dir), partial=partial)


def __getattr__(name: str) -> Any:
    # prmflow.export is the export package, and callable: prmflow.export(run_dir, out, format="trl", ...)
    if name == "export":
        import prmflow.export

        return prmflow.export
    raise AttributeError(f"module 'prmflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["__version__", "connect", "export", "run"]
