"""Consistency weights: trust a step's pseudo-label where it agrees with the trajectory's outcome.

MetaStone-S1's self-supervised PRM (Wang et al. 2025, "Test-Time Scaling with Reflective
Generative Model") has no step annotations: each step is trained towards the *outcome* of its
trajectory, but only where the step's current score already agrees with that outcome, so a
correct step inside a wrong solution (or a wrong step inside a right one) does not teach the PRM
the opposite of the truth. Their training code (``verl/workers/actor/dp_actor.py``):

* a step is kept iff (score > 0 and outcome right) or (score < 0 and outcome wrong) — scores are
  logits there, so 0 is probability 0.5, and a score exactly at it is kept by neither side;
* kept steps are class-balanced over the whole batch: with ``N_pos`` kept steps of right
  trajectories, ``N_neg`` kept steps of wrong ones, each count plus one and ``N`` their sum,
  a positive weighs ``1.5 * N_neg / N`` and a negative ``N_pos / N``;
* the loss is ``sum(weight * BCE) / sum(weight)`` (the trainer's normalisation, not done here).

Here the score may be any per-step column (MC value, a judge's score, an external PRM's
probability): it is binarised at ``threshold`` into a pseudo-label, and the modes are

* "hard": weight 1.0 where the pseudo-label agrees with the outcome, else 0.0;
* "balanced": MetaStone-S1's class-balanced weights above, computed over a batch (or corpus) of
  trajectories — see :func:`batch_consistency_weights`, or :func:`class_counts` +
  :func:`balanced_class_weights` to count once and weight many (e.g. a Beam combine then a map);
* "soft": weight = P(pseudo-label agrees with the outcome) with the score read as the
  probability that the step is good: ``score`` if the outcome is right, ``1 - score`` if wrong.
  No threshold; scores must be in [0, 1].

A step without a score (None) always weighs 0.0 and is never counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prmflow.labelers.process._compare import compare

ConsistencyMode = Literal["hard", "balanced", "soft"]
CONSISTENCY_MODES: tuple[str, ...] = ("hard", "balanced", "soft")
TiePolicy = Literal["drop", "positive", "negative"]
TIE_POLICIES: tuple[str, ...] = ("drop", "positive", "negative")

DEFAULT_POSITIVE_FACTOR = 1.5
"""MetaStone-S1's extra factor on the positive class weight (``1.5 * pos_mask * pos_weight``)."""
DEFAULT_COUNT_SMOOTHING = 1.0
"""MetaStone-S1 adds 1 to each class count (``pos_mask.sum() + 1``), which also keeps the weights
defined when a batch has only one class."""

Trajectory = tuple[Sequence[float | None], bool]
"""(per-step scores, outcome is right) of one trajectory."""


@dataclass(frozen=True)
class ConsistencyConfig:
    """Consistency-weight settings."""

    mode: ConsistencyMode = "hard"
    """"hard" 0/1 agreement, "balanced" MetaStone-S1 class-balanced, "soft" agreement probability."""
    threshold: float = 0.5
    """Pseudo-label of a step: positive iff score > threshold, negative iff score < threshold
    (hard and balanced modes). 0.5 is MetaStone-S1's logit 0 on a probability scale. For MC values
    use e.g. 0.0 with ``ties="negative"`` (value 0 = no completion succeeded = negative)."""
    ties: TiePolicy = "drop"
    """A score at the threshold: "drop" (weight 0, MetaStone-S1's strict comparisons), or count it
    as a "positive" or "negative" pseudo-label."""
    positive_factor: float = DEFAULT_POSITIVE_FACTOR
    """Balanced mode: multiplier on the positive class weight (MetaStone-S1: 1.5). > 0."""
    count_smoothing: float = DEFAULT_COUNT_SMOOTHING
    """Balanced mode: added to each class count before weighting (MetaStone-S1: 1). >= 0."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        if self.mode not in CONSISTENCY_MODES:
            raise ValueError(f"mode must be one of {CONSISTENCY_MODES}, got {self.mode!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if self.ties not in TIE_POLICIES:
            raise ValueError(f"ties must be one of {TIE_POLICIES}, got {self.ties!r}")
        if not (math.isfinite(self.positive_factor) and self.positive_factor > 0):
            raise ValueError(f"positive_factor must be > 0, got {self.positive_factor}")
        if not (math.isfinite(self.count_smoothing) and self.count_smoothing >= 0):
            raise ValueError(f"count_smoothing must be >= 0, got {self.count_smoothing}")


def pseudo_labels(scores: Sequence[float | None], config: ConsistencyConfig) -> list[float | None]:
    """Binarised scores: 1.0 above the threshold, 0.0 below, a tie per ``config.ties``
    (None for "drop"); None scores stay None."""
    tie = {"drop": None, "positive": 1.0, "negative": 0.0}[config.ties]
    out: list[float | None] = []
    for s in scores:
        if s is None:
            out.append(None)
        else:
            c = compare(s, config.threshold)
            out.append(tie if c == 0 else (1.0 if c > 0 else 0.0))
    return out


def agreement(scores: Sequence[float | None], outcome_correct: bool, config: ConsistencyConfig) -> list[bool]:
    """Per step, whether its pseudo-label exists and equals the outcome (the steps kept)."""
    target = 1.0 if outcome_correct else 0.0
    return [label is not None and label == target for label in pseudo_labels(scores, config)]


def class_counts(batch: Sequence[Trajectory], config: ConsistencyConfig) -> tuple[int, int]:
    """(N_pos, N_neg): kept steps of right trajectories and of wrong ones, over the batch."""
    n_pos = n_neg = 0
    for scores, outcome_correct in batch:
        kept = sum(agreement(scores, outcome_correct, config))
        if outcome_correct:
            n_pos += kept
        else:
            n_neg += kept
    return n_pos, n_neg


def balanced_class_weights(n_pos: int, n_neg: int, config: ConsistencyConfig) -> tuple[float, float]:
    """(positive weight, negative weight) of MetaStone-S1's balancing.

    With ``c = config.count_smoothing``, ``P = n_pos + c``, ``Q = n_neg + c`` and ``N = P + Q``:
    positive ``positive_factor * Q / N``, negative ``P / N``. The rarer class weighs more. When
    ``N == 0`` (no kept steps and no smoothing) both are 0.0: there is nothing to weigh.
    """
    if n_pos < 0 or n_neg < 0:
        raise ValueError(f"class counts must be >= 0, got n_pos={n_pos}, n_neg={n_neg}")
    p = n_pos + config.count_smoothing
    q = n_neg + config.count_smoothing
    total = p + q
    if total == 0:
        return 0.0, 0.0
    return config.positive_factor * q / total, p / total


def consistency_weights(
    scores: Sequence[float | None],
    outcome_correct: bool,
    config: ConsistencyConfig,
    *,
    class_weights: tuple[float, float] | None = None,
) -> list[float]:
    """Per-step weights of one trajectory.

    Balanced mode needs ``class_weights`` (from :func:`balanced_class_weights` over the batch the
    trajectory belongs to): balancing one trajectory by itself would weigh its only class by the
    absence of the other.
    """
    if config.mode == "soft":
        out = []
        for i, s in enumerate(scores):
            if s is not None and not 0.0 <= s <= 1.0:
                raise ValueError(f"scores[{i}] must be in [0, 1] for mode 'soft', got {s}")
            out.append(0.0 if s is None else (s if outcome_correct else 1.0 - s))
        return out
    kept = agreement(scores, outcome_correct, config)
    if config.mode == "hard":
        return [1.0 if k else 0.0 for k in kept]
    if class_weights is None:
        raise ValueError(
            "class_weights must be given for mode 'balanced', got None "
            "(use batch_consistency_weights, or class_counts + balanced_class_weights)"
        )
    w = class_weights[0] if outcome_correct else class_weights[1]
    return [w if k else 0.0 for k in kept]


def batch_consistency_weights(batch: Sequence[Trajectory], config: ConsistencyConfig) -> list[list[float]]:
    """Weights for every trajectory of a batch; balanced mode counts classes over the whole batch."""
    class_weights = None
    if config.mode == "balanced":
        class_weights = balanced_class_weights(*class_counts(batch, config), config)
    return [
        consistency_weights(scores, outcome_correct, config, class_weights=class_weights)
        for scores, outcome_correct in batch
    ]
