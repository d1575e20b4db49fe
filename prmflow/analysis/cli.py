"""``prmflow inspect DIR``, ``prmflow sql DIR QUERY``, ``prmflow schema [TABLE]``."""

from __future__ import annotations

import sys

from prmflow.core.cliparse import parser
from prmflow.schemas import TABLES, column_docs

DESCRIPTIONS = {
    "inspect": "A finished run's summary: counts, dead letters, label quality without gold (pass@k, problems "
               "never solved, first-error positions, rollouts cut at max_tokens, degenerate-label warnings) and, "
               "where the inputs carry gold, agreement with it.",
    "sql": "Any DuckDB query over a run's views (problems, trajectories, steps, start_states, rollouts, "
           "dead_letters); a single value prints bare, so scripts can use it.",
    "schema": "The columns of the output tables, with their types and meaning.",
}


def _partial(p) -> None:
    p.add_argument("--partial", action="store_true",
                   help="read an output without _SUCCESS (a failed, killed or unfinished run), with a warning")


def add_inspect_arguments(p) -> None:
    p.add_argument("directory", metavar="DIR", help="a run's output directory")
    _partial(p)


def add_sql_arguments(p) -> None:
    p.add_argument("directory", metavar="DIR", help="a run's output directory")
    p.add_argument("query", metavar="QUERY", help='the SQL, e.g. "SELECT count(*) FROM steps"')
    _partial(p)
    p.add_argument("--confined", action="store_true",
                   help="the query reads the run's views and files only (no other file, no COPY TO, no ATTACH); "
                        "without it, sql can read and write any file DuckDB can, like any local DuckDB session")


def add_schema_arguments(p) -> None:
    p.add_argument("table", nargs="?", choices=list(TABLES), metavar="TABLE",
                   help=f"one table ({', '.join(TABLES)}); all of them when left out")


ADD_ARGUMENTS = {"inspect": add_inspect_arguments, "sql": add_sql_arguments, "schema": add_schema_arguments}


def schema_text(table: str | None = None) -> str:
    out = []
    for name, (cls, _) in TABLES.items():
        if table and name != table:
            continue
        out.append(f"{name}:")
        out += [f"  {col:<22} {typ:<22} {doc}" for col, typ, doc in column_docs(cls)]
    return "\n".join(out)


def main(command: str, args: list[str]) -> int:
    ns = parser(f"prmflow {command}", DESCRIPTIONS[command], ADD_ARGUMENTS[command]).parse_args(args)
    if command == "schema":
        print(schema_text(ns.table))
        return 0
    import duckdb

    from prmflow.analysis.summary import _table, printable, render, summary
    from prmflow.analysis.views import check_complete, connect

    if command == "inspect":
        warning = check_complete(ns.directory, ns.partial)
        text = summary(connect(ns.directory, partial=ns.partial))
        print(f"{printable(warning)}\n\n{text}" if warning else text)
        return 0
    warning = check_complete(ns.directory, ns.partial)
    if warning:
        print(printable(warning), file=sys.stderr)  # stderr, so a scalar answer on stdout stays parseable
    # --confined: the query reads the run's views and files only (no other file, COPY TO, ATTACH)
    con = connect(ns.directory, partial=ns.partial, confined=ns.confined)
    try:
        columns, rows = _table(con, ns.query)
    except duckdb.Error as e:
        print(f"prmflow sql: {printable(str(e), keep_lines=True)}", file=sys.stderr)
        return 2
    if len(columns) == 1 and len(rows) == 1:
        value = rows[0][0]  # a scalar prints bare, so scripts can use it (control characters escaped)
        print(printable(str(value), keep_lines=True) if isinstance(value, str) else value)
    else:
        print(render(f"{len(rows)} rows", columns, rows))
    return 0
