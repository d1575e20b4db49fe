"""Score pseudo-labels against gold wherever gold exists (arith's exact checker, ProcessBench,
PRM800K): the ProcessBench metric, step-level accuracy, precision/recall of error steps.

Conventions: a method's predicted first error is the first step it labels 0 (-1 if none). Step-level
figures use the steps up to and including the gold first error (all steps when there is none),
where every convention for steps after an error (OmegaPRM's "all negative", a checker's local truth,
ProcessBench's "unknown") agrees.

Rows: every labeling method; ``judge`` (the judge's first error) when a judge ran; and
``<method>+consensus``, the method's labels on the trajectories where judge and method agree on the
first error (Qwen "Lessons of Developing PRMs" §3.1.3), with ``kept`` the fraction of gold
trajectories each row scores. ``first_error_precision``: of the trajectories a method says have an
error, the share where it names the gold first error.
"""

from __future__ import annotations

import duckdb

METHOD_LABELS = """
    SELECT source, method, trajectory_id, step_index, label, gold_label, gold_first_error
    FROM steps
    WHERE gold_first_error IS NOT NULL AND method IS NOT NULL AND method <> 'outcome'
"""

# The judge's step labels from its first error: right before it, wrong at it and after (the
# after-error convention does not matter: step figures stop at the gold first error).
JUDGE_LABELS = """
    SELECT s.source, 'judge' AS method, s.trajectory_id, s.step_index,
           CASE WHEN t.judge_first_error IS NULL THEN NULL
                WHEN t.judge_first_error = -1 OR s.step_index < t.judge_first_error THEN 1.0
                ELSE 0.0 END AS label,
           s.gold_label, s.gold_first_error
    FROM steps s JOIN trajectories t USING (trajectory_id)
    WHERE s.gold_first_error IS NOT NULL AND t.judge_votes IS NOT NULL
"""

# A method's labels on the trajectories consensus keeps (judge and method agree on the first error).
CONSENSUS_LABELS = """
    SELECT source, method || '+consensus' AS method, trajectory_id, step_index, label, gold_label, gold_first_error
    FROM steps
    WHERE gold_first_error IS NOT NULL AND method IS NOT NULL AND method <> 'outcome' AND consensus
"""

GOLD_SQL = """
WITH labels AS ({labels}),
candidates AS (
    SELECT source, count(DISTINCT trajectory_id) AS with_gold FROM steps
    WHERE gold_first_error IS NOT NULL GROUP BY ALL
),
per_traj AS (
    SELECT source, method, trajectory_id,
           any_value(gold_first_error) AS gold_fe,
           coalesce(min(step_index) FILTER (WHERE label = 0), -1) AS pred_fe,
           count(*) FILTER (WHERE label IS NULL) AS unlabeled
    FROM labels GROUP BY ALL
),
traj AS (
    SELECT source, method,
           count(*) FILTER (WHERE gold_fe >= 0) AS erroneous,
           avg(CASE WHEN gold_fe >= 0 THEN CAST(pred_fe = gold_fe AS DOUBLE) END) AS acc_erroneous,
           count(*) FILTER (WHERE gold_fe = -1) AS correct,
           avg(CASE WHEN gold_fe = -1 THEN CAST(pred_fe = -1 AS DOUBLE) END) AS acc_correct,
           count(*) FILTER (WHERE pred_fe >= 0) AS pred_erroneous,
           count(*) FILTER (WHERE pred_fe >= 0 AND pred_fe = gold_fe) AS fe_hits
    FROM per_traj WHERE unlabeled = 0 GROUP BY ALL
),
step AS (
    SELECT source, method,
           count(*) AS steps_scored,
           avg(CAST(label = gold_label AS DOUBLE)) AS step_accuracy,
           count(*) FILTER (WHERE label = 0 AND gold_label = 0) AS tp,
           count(*) FILTER (WHERE label = 0) AS pred_err,
           count(*) FILTER (WHERE gold_label = 0) AS gold_err
    FROM labels
    WHERE gold_label IN (0, 1) AND label IS NOT NULL
      AND (gold_first_error = -1 OR step_index <= gold_first_error)
    GROUP BY ALL
)
SELECT traj.source, traj.method, erroneous, correct,
       (erroneous + correct) / with_gold AS kept,
       acc_erroneous, acc_correct,
       CASE WHEN acc_erroneous + acc_correct > 0
            THEN 2 * acc_erroneous * acc_correct / (acc_erroneous + acc_correct) END AS processbench_f1,
       fe_hits / nullif(pred_erroneous, 0) AS first_error_precision,
       step_accuracy,
       tp / nullif(pred_err, 0) AS error_precision,
       tp / nullif(gold_err, 0) AS error_recall
FROM traj LEFT JOIN step USING (source, method) JOIN candidates USING (source)
ORDER BY 1, 2
"""


def _has_columns(con: duckdb.DuckDBPyConnection, table: str, *columns: str) -> bool:
    try:
        found = {d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description}
    except duckdb.Error:
        return False
    return set(columns) <= found


def gold_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The metrics query over whichever labels this output has: every method's, the judge's (when it
    ran) and each method's on the consensus subset (when both ran). Older outputs lack the judge
    columns and get the methods alone."""
    parts = [METHOD_LABELS]
    if _has_columns(con, "trajectories", "judge_first_error", "judge_votes"):
        parts.append(JUDGE_LABELS)
    if _has_columns(con, "steps", "consensus"):
        parts.append(CONSENSUS_LABELS)
    return GOLD_SQL.format(labels=" UNION ALL ".join(parts))


def gold_metrics(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
    cur = con.execute(gold_sql(con))
    return [d[0] for d in cur.description], cur.fetchall()


def gold_metrics_dicts(con: duckdb.DuckDBPyConnection) -> list[dict]:
    columns, rows = gold_metrics(con)
    return [dict(zip(columns, r, strict=True)) for r in rows]
