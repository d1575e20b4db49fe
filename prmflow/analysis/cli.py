"""``prmflow inspect DIR``, ``prmflow sql DIR QUERY``, ``prmflow schema [TABLE]``."""

from __future__ import annotations

import sys

import duckdb

from prmflow.analysis.summary import _table, printable, render, summary
from prmflow.analysis.views import check_complete, connect
from prmflow.schemas import TABLES, column_docs


def schema_text(table: str | None = None) -> str:
    out = []
    for name, (cls, _) in TABLES.items():
        if table and name != table:
            continue
        out.append(f"{name}:")
        out += [f"  {col:<22} {typ:<22} {doc}" for col, typ, doc in column_docs(cls)]
    return "\n".join(out)


def main(command: str, args: list[str]) -> int:
    if command == "schema":
        if args and args[0] not in TABLES:
            print(f"prmflow schema: table must be one of {list(TABLES)}, got {args[0]!r}", file=sys.stderr)
            return 2
        print(schema_text(args[0] if args else None))
        return 0
    partial = "--partial" in args
    confined = "--confined" in args
    args = [a for a in args if a not in ("--partial", "--confined")]
    if command == "inspect":
        if len(args) != 1:
            print("usage: prmflow inspect DIR [--partial]", file=sys.stderr)
            return 2
        warning = check_complete(args[0], partial)
        text = summary(connect(args[0], partial=partial))
        print(f"{printable(warning)}\n\n{text}" if warning else text)
        return 0
    if len(args) != 2:
        print('usage: prmflow sql DIR "SELECT ..." [--partial] [--confined]', file=sys.stderr)
        return 2
    warning = check_complete(args[0], partial)
    if warning:
        print(printable(warning), file=sys.stderr)  # stderr, so a scalar answer on stdout stays parseable
    # --confined: the query reads the run's views and files only (no other file, COPY TO, ATTACH)
    con = connect(args[0], partial=partial, confined=confined)
    try:
        columns, rows = _table(con, args[1])
    except duckdb.Error as e:
        print(f"prmflow sql: {printable(str(e), keep_lines=True)}", file=sys.stderr)
        return 2
    if len(columns) == 1 and len(rows) == 1:
        value = rows[0][0]  # a scalar prints bare, so scripts can use it (control characters escaped)
        print(printable(str(value), keep_lines=True) if isinstance(value, str) else value)
    else:
        print(render(f"{len(rows)} rows", columns, rows))
    return 0
