"""Which trajectories leave a run, with which step labels, in which split: one DuckDB query over the views.

A trajectory is exported whole or not at all. Its steps are each other's context (a PRM scores step k
given steps 0..k-1), so a trajectory whose chosen label is missing on one step, or whose step falls below
``--min-weight``, cannot lose only that step: it is dropped, and the first reason that applies is counted
(the dataset card lists them). Reasons, in the order they are checked:

- ``source_filtered``, ``method_filtered``: outside ``--sources`` / ``--methods``;
- ``not_consensus``: ``--consensus-only`` or ``--label consensus``, and its judge and Monte-Carlo first
  errors do not agree (or were not both known);
- ``unlabeled_step``: a step has no value in the chosen label column;
- ``below_min_weight``: a step's consistency weight is below ``--min-weight`` or null;
- ``placeholder_in_text``: openrlhf / math-shepherd only, the placeholder's text occurs in the prompt or a
  step (see :func:`prmflow.export.formats.tagged.check_placeholder`).

The split is by problem: ``problem_id`` hashed with the seed (``content_id("split", seed, problem_id)``)
and read as a fraction in [0, 1); below ``--val-fraction`` is validation. Every trajectory of a problem
goes to the same side, so no problem is in both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

from prmflow.export.config import ExportConfig, ExportError
from prmflow.ids import content_id

LABEL_SQL = {
    "hard": "hard_label",
    "soft": "soft_label",
    "relative": "relative_label",
    # judge_score is the share of parsed judge votes placing the step before the first error
    # (prmflow.judge.aggregate_votes). A strict majority is positive; a tie (0.5) is negative, the same
    # pessimistic tie as the plurality verdict: Zhang et al. 2025 ("The Lessons of Developing Process
    # Reward Models in Mathematical Reasoning", §3) trace much of PRMs' weakness to false positives.
    "judge": "CASE WHEN judge_score IS NULL THEN NULL WHEN judge_score > 0.5 THEN 1.0 ELSE 0.0 END",
    # Consensus filtering (Lessons §3.1.3): the Monte-Carlo hard labels, kept only where the judge agrees
    "consensus": "hard_label",
    "gold": "gold_label",
}
"""The SQL of each ``--label`` over the ``steps`` view."""

DROP_REASONS = (
    "source_filtered", "method_filtered", "not_consensus", "unlabeled_step", "below_min_weight", "placeholder_in_text",
)

SPLITS = ("train", "validation")


def split_of(problem_id: str, seed: int, val_fraction: float) -> str:
    """train | validation for a problem: a seeded content hash of its id, read as a fraction in [0, 1)."""
    fraction = int(content_id("split", seed, problem_id), 16) / 16 ** 16
    return "validation" if fraction < val_fraction else "train"


@dataclass(frozen=True)
class Example:
    """One trajectory selected for export, its steps in order with the chosen label of each."""

    problem_id: str
    trajectory_id: str
    source: str
    domain: str
    prompt: str
    steps: tuple[str, ...]
    labels: tuple[float, ...]
    weights: tuple[float | None, ...]
    method: str | None
    outcome: float | None
    split: str


@dataclass
class Selection:
    examples: list[Example]
    trajectories_in_run: int
    dropped: Counter = field(default_factory=Counter)
    """Trajectories dropped, per reason (DROP_REASONS)."""


_QUERY = """
SELECT s.trajectory_id,
       any_value(s.problem_id) AS problem_id,
       any_value(s.source) AS source,
       any_value(s.domain) AS domain,
       list(s.step_text ORDER BY s.step_index) AS steps,
       list(({label})::DOUBLE ORDER BY s.step_index) AS labels,
       count({label}) AS labeled,
       list(s.weight ORDER BY s.step_index) AS weights,
       bool_and(coalesce(s.weight >= $min_weight, false)) AS weights_ok,
       list(DISTINCT s.method) FILTER (WHERE s.method IS NOT NULL) AS methods,
       bool_and(s.consensus IS TRUE) AS consensus,
       any_value(s.outcome) AS outcome,
       count(*) AS n, max(s.num_steps) AS num_steps, min(s.step_index) AS first, max(s.step_index) AS last
FROM steps s
GROUP BY s.trajectory_id
ORDER BY s.trajectory_id
"""


def _distinct(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [r[0] for r in con.execute(sql).fetchall() if r[0] is not None]


def check_filters(con: duckdb.DuckDBPyConnection, config: ExportConfig, table: str = "steps") -> None:
    """A --sources or --methods name the run does not hold is a typo, refused with the names it holds."""
    for option, values, column in (("--sources", config.sources, "source"), ("--methods", config.methods, "method")):
        if not values:
            continue
        held = _distinct(con, f"SELECT DISTINCT {column} FROM {table} ORDER BY 1")
        unknown = [v for v in values if v not in held]
        if unknown:
            raise ExportError(f"{option} names {', '.join(map(repr, unknown))}, which the run does not hold; "
                              f"it holds: {', '.join(held) or 'none'}")


def _drop_reason(row: dict, config: ExportConfig) -> str | None:
    if config.sources and row["source"] not in config.sources:
        return "source_filtered"
    if config.methods and not (row["methods"] and set(row["methods"]) <= set(config.methods)):
        return "method_filtered"
    if (config.consensus_only or config.label == "consensus") and not row["consensus"]:
        return "not_consensus"
    if row["labeled"] != row["n"]:
        return "unlabeled_step"
    if config.min_weight is not None and not row["weights_ok"]:
        return "below_min_weight"
    if config.format in ("openrlhf", "math-shepherd"):
        marker = config.marker
        if marker in row["prompt"] or any(marker in s for s in row["steps"]):
            return "placeholder_in_text"
    return None


def select_trajectories(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> Selection:
    """The run's trajectories with the chosen label per step, filtered, each with its split."""
    check_filters(con, config)
    cursor = con.execute(
        f"SELECT t.*, p.prompt FROM ({_QUERY.format(label=LABEL_SQL[config.label])}) t "
        f"LEFT JOIN problems p USING (problem_id) ORDER BY t.trajectory_id",
        {"min_weight": config.min_weight if config.min_weight is not None else 0.0},
    )
    names = [d[0] for d in cursor.description]
    selection = Selection(examples=[], trajectories_in_run=0)
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        selection.trajectories_in_run += 1
        if row["prompt"] is None:
            raise ExportError(f"trajectory {row['trajectory_id']} has no problem row ({row['problem_id']}): the run's "
                              f"tables are inconsistent; rerun it")
        if not (row["first"] == 0 and row["last"] == row["n"] - 1 == row["num_steps"] - 1):
            raise ExportError(f"trajectory {row['trajectory_id']} has {row['n']} step rows for {row['num_steps']} "
                              f"steps: the run's steps table is inconsistent; rerun it")
        reason = _drop_reason(row, config)
        if reason is not None:
            selection.dropped[reason] += 1
            continue
        methods = row["methods"] or []
        selection.examples.append(Example(
            problem_id=row["problem_id"],
            trajectory_id=row["trajectory_id"],
            source=row["source"],
            domain=row["domain"],
            prompt=row["prompt"],
            steps=tuple(row["steps"]),
            labels=tuple(float(v) for v in row["labels"]),
            weights=tuple(row["weights"]),
            method=methods[0] if len(methods) == 1 else ",".join(sorted(methods)) or None,
            outcome=row["outcome"],
            split=split_of(row["problem_id"], config.seed, config.val_fraction),
        ))
    return selection


def non_binary(examples: list[Example]) -> tuple[int, float | None]:
    """Steps whose label is neither 0 nor 1, and one such value (for the error message)."""
    found = [v for e in examples for v in e.labels if v not in (0.0, 1.0)]
    return len(found), (found[0] if found else None)
