"""Label quality without gold: what a run says about its own labels when the inputs carry no truth.

Every figure is a DuckDB query over the run's views, shared by ``prmflow inspect`` and the report:
the policy's pass@1 and pass@k per source, the share of problems it never solved, where the labeling
method puts the first error, how many samples and rollouts were cut at ``max_tokens`` (counted as
failures), and warnings when Monte-Carlo labels cannot carry more than the outcome does.
"""

from __future__ import annotations

import duckdb

SOLVES_LOW, SOLVES_HIGH = 0.10, 0.95
"""Outside this pass@1 band the policy (nearly) always fails or always succeeds: every rollout from
every prefix then ends the same way, and Monte-Carlo step labels repeat the outcome label."""
CUT_HIGH = 0.20
"""A warning when more than this share of samples or rollouts stopped at max_tokens."""

PASS_AT_K = """
    WITH per_problem AS (
        SELECT source, problem_id, count(*) AS k,
               count(*) FILTER (WHERE outcome >= 0.5) AS right_,
               count(*) FILTER (WHERE outcome IS NULL) AS unjudged,
               count(*) FILTER (WHERE finish_reason = 'length') AS cut
        FROM trajectories WHERE origin = 'sampled' GROUP BY ALL)
    SELECT source, count(*) AS problems, max(k) AS k, sum(k) AS samples,
           sum(right_) / sum(k) AS pass_at_1,
           avg(CASE WHEN right_ > 0 THEN 1.0 ELSE 0.0 END) AS pass_at_k,
           avg(CASE WHEN right_ = 0 THEN 1.0 ELSE 0.0 END) AS never_solved,
           sum(cut) / sum(k) AS cut_at_max_tokens,
           sum(unjudged) / sum(k) AS no_verdict
    FROM per_problem GROUP BY source ORDER BY source"""

FIRST_ERROR = """
    WITH per_trajectory AS (
        SELECT trajectory_id, any_value(method) AS method,
               min(step_index) FILTER (WHERE first_error) AS first_error,
               count(*) FILTER (WHERE label IS NOT NULL) AS labeled
        FROM steps GROUP BY trajectory_id)
    , counted AS (
        SELECT method, coalesce(first_error, -1) AS step, count(*) AS trajectories
        FROM per_trajectory WHERE labeled > 0 GROUP BY ALL)
    SELECT method, step, trajectories,
           repeat('#', CAST(ceil(40.0 * trajectories / max(trajectories) OVER (PARTITION BY method)) AS INTEGER))
               AS histogram
    FROM counted ORDER BY 1, 2"""

ROLLOUTS = """
    SELECT count(*) AS rollouts,
           avg(CASE WHEN outcome >= 0.5 THEN 1.0 ELSE 0.0 END) AS solved,
           avg(CASE WHEN finish_reason = 'length' THEN 1.0 ELSE 0.0 END) AS cut_at_max_tokens,
           count(*) FILTER (WHERE finish_reason = 'length' AND coalesce(outcome, 0) < 0.5) AS cut_and_failed
    FROM rollouts HAVING count(*) > 0"""

SECTIONS: list[tuple[str, str]] = [
    ("Policy pass rate without gold (sampled trajectories; cut = stopped at sampling.max_tokens)", PASS_AT_K),
    ("Label method's first-error position per trajectory (-1 = no error)", FIRST_ERROR),
    ("Rollouts (cut at process.max_tokens count as failures)", ROLLOUTS),
]


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def warnings(con: duckdb.DuckDBPyConnection) -> list[str]:
    """One line per problem a newcomer should see before a long rollout run or an export."""
    out = []
    has_mc = con.execute("SELECT count(*) FROM steps WHERE mc_rollouts > 0").fetchone()[0] > 0
    for r in _rows(con, PASS_AT_K):
        rate = r["pass_at_1"]
        if rate is None:
            continue
        if rate < SOLVES_LOW or rate > SOLVES_HIGH:
            side = "almost never" if rate < SOLVES_LOW else "almost always"
            out.append(
                f"{r['source']}: the policy solves {rate:.1%} of its samples ({r['never_solved']:.0%} of problems "
                f"never): its rollouts {side} succeed, so Monte-Carlo step labels {'are' if has_mc else 'would be'} "
                f"about the outcome labels; use an easier or stronger policy, or more samples, before a rollout run")
        if r["cut_at_max_tokens"] is not None and r["cut_at_max_tokens"] > CUT_HIGH:
            out.append(f"{r['source']}: {r['cut_at_max_tokens']:.0%} of samples stopped at sampling.max_tokens and "
                       "are graded as they are (most without an answer): raise sampling.max_tokens")
    for r in _rows(con, ROLLOUTS):
        if r["cut_at_max_tokens"] > CUT_HIGH:
            out.append(f"rollouts: {r['cut_at_max_tokens']:.0%} stopped at process.max_tokens and count as failures "
                       f"({r['cut_and_failed']} of them): raise process.max_tokens")
    return out


__all__ = ["CUT_HIGH", "SECTIONS", "SOLVES_HIGH", "SOLVES_LOW", "warnings"]
