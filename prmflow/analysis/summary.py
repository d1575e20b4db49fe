"""``prmflow inspect``: a readable label-quality summary, every figure a DuckDB query over the views."""

from __future__ import annotations

import re

import duckdb

from prmflow.analysis.gold import gold_metrics


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    cur = con.execute(sql)
    return [d[0] for d in cur.description], cur.fetchall()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, keep_lines: bool = False) -> str:
    """``text`` safe for a terminal: every C0/C1 control character and DEL as ``\\xNN`` (ESC starts
    colour changes, cursor moves, OSC 52 clipboard writes and window titles; BEL rings; CR overwrites
    the line). ``keep_lines`` leaves newlines and tabs (a bare scalar answer)."""
    pattern = _CONTROL_KEEP_LINES if keep_lines else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return printable(str(value))


def render(title: str, columns: list[str], rows: list[tuple]) -> str:
    cells = [[_fmt(v) for v in r] for r in rows]
    columns = [printable(str(c)) for c in columns]  # a column alias is query text: may hold anything
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [title, "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False))]
    numeric = [all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) for i in range(len(columns))]
    lines += ["  " + "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric, strict=False)) for r in cells]
    if not rows:
        lines.append("  (none)")
    return "\n".join(lines)


SECTIONS: list[tuple[str, str]] = [
    ("Rows", """
        SELECT (SELECT count(*) FROM problems) AS problems,
               (SELECT count(*) FROM trajectories) AS trajectories,
               (SELECT count(*) FROM steps) AS steps,
               (SELECT count(*) FROM start_states) AS start_states,
               (SELECT count(*) FROM rollouts) AS rollouts,
               (SELECT count(*) FROM dead_letters) AS dead_letters"""),
    ("Label balance by source (trajectory outcome; gold where imported)", """
        SELECT source, count(*) AS trajectories,
               avg(outcome) AS outcome_mean,
               avg(gold_outcome) AS gold_outcome_mean,
               count(*) FILTER (WHERE gold_first_error = -1) AS gold_no_error,
               count(*) FILTER (WHERE gold_first_error >= 0) AS gold_with_error
        FROM trajectories GROUP BY source ORDER BY source"""),
    ("Step labels by source", """
        SELECT source, count(*) AS steps,
               count(*) FILTER (WHERE gold_label = 1) AS gold_right,
               count(*) FILTER (WHERE gold_label = 0) AS gold_wrong,
               count(*) FILTER (WHERE gold_label IS NULL) AS gold_unknown,
               avg(hard_label) AS hard_label_mean,
               avg(soft_label) AS soft_label_mean
        FROM steps GROUP BY source ORDER BY source"""),
    ("Steps per trajectory", """
        SELECT source, min(len(steps)) AS min, round(avg(len(steps)), 2) AS mean,
               median(len(steps)) AS median, max(len(steps)) AS max
        FROM trajectories GROUP BY source ORDER BY source"""),
    ("Gold first-error position (-1 = no error)", """
        SELECT gold_first_error AS step, count(*) AS trajectories,
               repeat('#', CAST(ceil(50.0 * count(*) / max(count(*)) OVER ()) AS INTEGER)) AS histogram
        FROM trajectories WHERE gold_first_error IS NOT NULL GROUP BY 1 ORDER BY 1"""),
    ("Outcome labeling status (parse failures, missing references)", """
        SELECT outcome_source, outcome_status, count(*) AS trajectories
        FROM trajectories GROUP BY ALL ORDER BY 1, 2"""),
    ("Outcome vs imported gold outcome", """
        SELECT source, count(*) AS judged,
               count(*) FILTER (WHERE outcome = gold_outcome) AS agree,
               count(*) FILTER (WHERE outcome = 1 AND gold_outcome = 0) AS false_pos,
               count(*) FILTER (WHERE outcome = 0 AND gold_outcome = 1) AS false_neg
        FROM trajectories WHERE gold_outcome IS NOT NULL AND outcome IS NOT NULL
        GROUP BY source ORDER BY source"""),
    ("Dead letters by reason", """
        SELECT stage, reason, count(*) AS rows FROM dead_letters GROUP BY ALL ORDER BY 3 DESC, 1, 2"""),
]


GOLD_TITLE = ("Pseudo-labels against gold (first error: ProcessBench F1 = harmonic mean of the two "
              "accuracies; steps: up to the gold first error)")


def summary(con: duckdb.DuckDBPyConnection) -> str:
    """Warnings first (label quality without gold), then the sections, then agreement with gold."""
    from prmflow.analysis import quality

    parts = [f"WARNING: {w}" for w in quality.warnings(con)]
    parts += [render(title, *_table(con, sql)) for title, sql in SECTIONS[:1] + quality.SECTIONS + SECTIONS[1:]]
    columns, rows = gold_metrics(con)
    if rows:  # only when some step has both a method's label and gold
        parts.append(render(GOLD_TITLE, columns, rows))
    return "\n\n".join(parts)
