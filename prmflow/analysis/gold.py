"""Score pseudo-labels against gold wherever gold exists (arith's exact checker, ProcessBench,
PRM800K): the ProcessBench metric, step-level accuracy, precision/recall of error steps.

Conventions: a method's predicted first error is the first step it labels 0 (-1 if none). Step-level
figures use the steps up to and including the gold first error (all steps when there is none),
where every convention for steps after an error (OmegaPRM's "all negative", a checker's local truth,
ProcessBench's "unknown") agrees.
"""

from __future__ import annotations

import duckdb

GOLD_SQL = """
WITH per_traj AS (
    SELECT source, method, trajectory_id,
           any_value(gold_first_error) AS gold_fe,
           coalesce(min(step_index) FILTER (WHERE label = 0), -1) AS pred_fe,
           count(*) FILTER (WHERE label IS NULL) AS unlabeled
    FROM steps
    WHERE gold_first_error IS NOT NULL AND method IS NOT NULL AND method <> 'outcome'
    GROUP BY ALL
),
traj AS (
    SELECT source, method,
           count(*) FILTER (WHERE gold_fe >= 0) AS erroneous,
           avg(CASE WHEN gold_fe >= 0 THEN CAST(pred_fe = gold_fe AS DOUBLE) END) AS acc_erroneous,
           count(*) FILTER (WHERE gold_fe = -1) AS correct,
           avg(CASE WHEN gold_fe = -1 THEN CAST(pred_fe = -1 AS DOUBLE) END) AS acc_correct
    FROM per_traj WHERE unlabeled = 0 GROUP BY ALL
),
step AS (
    SELECT source, method,
           count(*) AS steps_scored,
           avg(CAST(label = gold_label AS DOUBLE)) AS step_accuracy,
           count(*) FILTER (WHERE label = 0 AND gold_label = 0) AS tp,
           count(*) FILTER (WHERE label = 0) AS pred_err,
           count(*) FILTER (WHERE gold_label = 0) AS gold_err
    FROM steps
    WHERE gold_label IN (0, 1) AND label IS NOT NULL AND method <> 'outcome'
      AND (gold_first_error = -1 OR step_index <= gold_first_error)
    GROUP BY ALL
)
SELECT traj.source, traj.method, erroneous, correct, acc_erroneous, acc_correct,
       CASE WHEN acc_erroneous + acc_correct > 0
            THEN 2 * acc_erroneous * acc_correct / (acc_erroneous + acc_correct) END AS processbench_f1,
       step_accuracy,
       tp / nullif(pred_err, 0) AS error_precision,
       tp / nullif(gold_err, 0) AS error_recall
FROM traj LEFT JOIN step USING (source, method)
ORDER BY 1, 2
"""


def gold_metrics(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
    cur = con.execute(GOLD_SQL)
    return [d[0] for d in cur.description], cur.fetchall()


def gold_metrics_dicts(con: duckdb.DuckDBPyConnection) -> list[dict]:
    columns, rows = gold_metrics(con)
    return [dict(zip(columns, r, strict=True)) for r in rows]
