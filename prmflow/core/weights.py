"""MetaStone-S1 consistency weights for step rows, from any score column.

A step's pseudo-label (its score against a threshold) is kept where it agrees with the trajectory's
final outcome. The score can be the Monte-Carlo value of this run's rollouts, a judge's score, or
``prm_score``: per-step scores an external PRM wrote in a previous round and an input imported
(``fields.step_scores``). Weighing a round's labels by the last round's PRM is what makes
self-training iterative.

Agreement is per step, so hard and soft weights are a map over rows; balanced weights need the
class counts of the whole corpus first (a global combine, then the same map).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prmflow.core.section import ConfigError, from_mapping, require
from prmflow.labelers.outcome import is_correct
from prmflow.labelers.process import ConsistencyConfig, agreement, balanced_class_weights, consistency_weights

SCORE_COLUMNS: tuple[str, ...] = (
    "mc_value", "soft_label", "hard_label", "relative_label", "judge_score", "prm_score", "label", "gold_label",
)


@dataclass(frozen=True)
class WeightsConfig:
    """The top-level ``consistency`` section: which column to score by, and how to weigh."""

    consistency: ConsistencyConfig
    score: str = "mc_value"

    @classmethod
    def from_mapping(cls, data: Any) -> WeightsConfig:
        """The flat YAML shape: ``{score, mode, threshold, ties, ...}``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"consistency must be a mapping, got {data!r}")
        opts = dict(data)
        score = opts.pop("score", "mc_value")
        require(score in SCORE_COLUMNS, "consistency.score", f"one of {list(SCORE_COLUMNS)}", score)
        return cls(from_mapping(ConsistencyConfig, opts, "consistency"), score)

    from_dict = from_mapping


def _outcome_correct(row: dict) -> bool | None:
    return is_correct(row.get("outcome"))


def kept_counts(row: dict, config: WeightsConfig) -> tuple[int, int]:
    """(1, 0) for a kept step of a right trajectory, (0, 1) for one of a wrong trajectory, else (0, 0)."""
    correct = _outcome_correct(row)
    if correct is None or not agreement([row.get(config.score)], correct, config.consistency)[0]:
        return 0, 0
    return (1, 0) if correct else (0, 1)


def row_weight(row: dict, config: WeightsConfig, class_counts: tuple[int, int] | None = None) -> float | None:
    """The row's weight; None when its trajectory has no outcome to agree with."""
    correct = _outcome_correct(row)
    if correct is None:
        return None
    class_weights = None
    if config.consistency.mode == "balanced":
        if class_counts is None:
            raise ValueError("balanced weights need the corpus class counts (N_pos, N_neg)")
        class_weights = balanced_class_weights(*class_counts, config.consistency)
    return consistency_weights([row.get(config.score)], correct, config.consistency, class_weights=class_weights)[0]
