"""The ``prmflow`` command: run, inspect, sql, schema."""

from __future__ import annotations

import logging
import sys

from prmflow.config import ConfigError

USAGE = """prmflow COMMAND ...

  run CONFIG.yaml [--output DIR] [beam options]   run a labeling pipeline
  inspect DIR                                     summary of an output (DuckDB views)
  sql DIR "SELECT ..."                            any query over the views
  schema [TABLE]                                  the columns of the output tables
"""


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("prmflow").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    _setup_logging()
    try:
        if command == "run":
            from prmflow.pipelines.label import run

            manifest = run(rest)
            return 0 if manifest["reconciliation"]["ok"] else 1
        if command in ("inspect", "sql", "schema"):
            from prmflow.analysis import cli as analysis_cli

            return analysis_cli.main(command, rest)
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        print(f"prmflow {command}: {e}", file=sys.stderr)
        return 2
    print(f"prmflow: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
