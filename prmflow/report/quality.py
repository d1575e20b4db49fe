"""The report's label-quality section for runs without gold: the tables and warnings of
``prmflow inspect`` (``analysis/quality.py``), so the page and the terminal say the same."""

from __future__ import annotations

import html

import duckdb

from prmflow.analysis import quality
from prmflow.report.page import Section, table_html


def label_quality(con: duckdb.DuckDBPyConnection, manifest: dict) -> Section:
    s = Section("label-quality", "Label quality without gold")
    warnings = quality.warnings(con)
    s.notes += [f'<span class="bad">warning</span>: {html.escape(w)}' for w in warnings]
    if not warnings:
        s.notes.append('<span class="ok">no warning</span>: the policy solves between '
                       f"{quality.SOLVES_LOW:.0%} and {quality.SOLVES_HIGH:.0%} of its samples (or did not sample), "
                       "and few samples or rollouts stopped at max_tokens")
    for title, sql in quality.SECTIONS:
        cur = con.execute(sql)
        rows = cur.fetchall()
        s.notes.append(html.escape(title))
        s.tables.append(table_html([d[0] for d in cur.description], rows) if rows else "<p class=\"note\">(none)</p>")
    return s


__all__ = ["label_quality"]
