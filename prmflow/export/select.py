"""Which trajectories leave a run, with which step labels, in which split: one DuckDB query over the views.

Its steps are each other's context (a PRM scores step k given steps 0..k-1), so a trajectory never
loses a step from its middle. What happens after its first wrong step (the first step whose chosen label
is 0) is ``--after-first-error`` (:data:`AFTER_FIRST_ERROR`):

- ``truncate`` (the default): the trajectory is exported up to and including its first wrong step, and
  the steps after it are left out, labeled or not. This is the PRM800K convention that TRL's own
  conversion (``examples/datasets/prm800k.py``) and ProcessBench follow: once a step is wrong, the
  later steps have no well-defined label (gold and binary-search labels leave them null; Monte-Carlo
  labels there describe a continuation from a wrong state).
- ``negative``: the steps after the first wrong step are exported, each labeled 0 ("once wrong, the
  rest is wrong", Math-Shepherd's hard estimation read strictly).
- ``drop``: the behaviour before the convention: a trajectory whose steps after the first error are all
  labeled is exported whole with its own labels; one with an unlabeled step there is dropped
  (``unlabeled_step``).

A step before the first wrong one without a label, or below ``--min-weight``, drops the whole
trajectory, and the first reason that applies is counted (the dataset card lists them). Reasons, in
the order they are checked:

- ``source_filtered``, ``method_filtered``: outside ``--sources`` / ``--methods``;
- ``not_consensus``: ``--consensus-only`` or ``--label consensus``, and its judge and Monte-Carlo first
  errors do not agree (or were not both known);
- ``unlabeled_step``: an exported step has no value in the chosen label column;
- ``below_min_weight``: an exported step's consistency weight is below ``--min-weight`` or null;
- ``placeholder_in_text``: openrlhf / math-shepherd only, the placeholder's text occurs in the prompt or a
  step (see :func:`prmflow.export.formats.tagged.check_placeholder`);
- ``step_prefix_in_text``: math-shepherd only, the problem text holds ``Step 1:``, where TRL's converter
  would cut the first step off (see :mod:`prmflow.export.formats.math_shepherd`).

The split is by problem: ``problem_id`` hashed with the seed (``content_id("split", seed, problem_id)``)
and read as a fraction in [0, 1); below ``--val-fraction`` is validation. Every trajectory of a problem
goes to the same side, so no problem is in both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

from prmflow.export.config import AFTER_FIRST_ERROR, ExportConfig, ExportError  # noqa: F401 (re-exported)
from prmflow.export.formats.tagged import prefix_clash
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
    "step_prefix_in_text",
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
    first_error: Counter = field(default_factory=Counter)
    """What the first-error convention did: ``with_error`` (exported trajectories holding a wrong step),
    ``truncated`` (trajectories cut after it), ``steps_cut``, ``steps_negated`` (labels set to 0 by
    ``negative``), ``kept_whole`` (``drop``: trajectories exported past their first error)."""


_QUERY = """
SELECT s.trajectory_id,
       any_value(s.problem_id) AS problem_id,
       any_value(s.source) AS source,
       any_value(s.domain) AS domain,
       list(s.step_text ORDER BY s.step_index) AS steps,
       list(({label})::DOUBLE ORDER BY s.step_index) AS labels,
       list(s.weight ORDER BY s.step_index) AS weights,
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


def _filter_reason(row: dict, config: ExportConfig) -> str | None:
    """The reasons that look at the trajectory as a whole, before its labels are read."""
    if config.sources and row["source"] not in config.sources:
        return "source_filtered"
    if config.methods and not (row["methods"] and set(row["methods"]) <= set(config.methods)):
        return "method_filtered"
    if (config.consensus_only or config.label == "consensus") and not row["consensus"]:
        return "not_consensus"
    return None


def first_error_cut(labels: list[float | None], mode: str) -> tuple[int | None, list[float | None], str | None]:
    """``(first wrong index or None, the labels to export, drop reason or None)`` under ``mode``.

    The labels returned are as long as the steps to export: a prefix of ``labels`` for ``truncate``."""
    first = next((i for i, v in enumerate(labels) if v == 0.0), None)
    head = labels if first is None else labels[: first + 1]
    if any(v is None for v in head):
        return first, head, "unlabeled_step"
    if first is None or first == len(labels) - 1:
        return first, list(labels), None
    if mode == "truncate":
        return first, list(head), None
    if mode == "negative":
        return first, list(head) + [0.0] * (len(labels) - first - 1), None
    if any(v is None for v in labels[first + 1 :]):
        return first, list(labels), "unlabeled_step"
    return first, list(labels), None


def _label_reason(steps: list[str], weights: list, prompt: str, config: ExportConfig) -> str | None:
    """The reasons that look at the steps to export."""
    if config.min_weight is not None and not all(w is not None and w >= config.min_weight for w in weights):
        return "below_min_weight"
    if config.format in ("openrlhf", "math-shepherd"):
        marker = config.marker
        if marker in prompt or any(marker in s for s in steps):
            return "placeholder_in_text"
    if config.format == "math-shepherd":
        if prefix_clash(prompt, tuple(steps)):
            return "step_prefix_in_text"
    return None


def select_trajectories(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> Selection:
    """The run's trajectories with the chosen label per step, filtered, each with its split."""
    check_filters(con, config)
    cursor = con.execute(
        f"SELECT t.*, p.prompt FROM ({_QUERY.format(label=LABEL_SQL[config.label])}) t "
        f"LEFT JOIN problems p USING (problem_id) ORDER BY t.trajectory_id")
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
        reason = _filter_reason(row, config)
        first, labels, cut_reason = first_error_cut(list(row["labels"]), config.after_first_error)
        reason = reason or cut_reason
        n = len(labels)
        steps, weights = list(row["steps"])[:n], list(row["weights"])[:n]
        reason = reason or _label_reason(steps, weights, row["prompt"], config)
        if reason is not None:
            selection.dropped[reason] += 1
            continue
        _count_first_error(selection.first_error, config.after_first_error, first, list(row["labels"]), labels)
        methods = row["methods"] or []
        selection.examples.append(Example(
            problem_id=row["problem_id"],
            trajectory_id=row["trajectory_id"],
            source=row["source"],
            domain=row["domain"],
            prompt=row["prompt"],
            steps=tuple(steps),
            labels=tuple(float(v) for v in labels),
            weights=tuple(weights),
            method=methods[0] if len(methods) == 1 else ",".join(sorted(methods)) or None,
            outcome=row["outcome"],
            split=split_of(row["problem_id"], config.seed, config.val_fraction),
        ))
    return selection


def _count_first_error(counts: Counter, mode: str, first: int | None, before: list, after: list) -> None:
    counts["with_error"] += first is not None
    if first is None or first == len(before) - 1:
        return
    if mode == "truncate":
        counts["truncated"] += 1
        counts["steps_cut"] += len(before) - len(after)
    elif mode == "negative":
        counts["steps_negated"] += sum(1 for b in before[first + 1 :] if b != 0.0)
    else:
        counts["kept_whole"] += 1


def non_binary(examples: list[Example]) -> tuple[int, float | None]:
    """Steps whose label is neither 0 nor 1, and one such value (for the error message)."""
    found = [v for e in examples for v in e.labels if v not in (0.0, 1.0)]
    return len(found), (found[0] if found else None)
