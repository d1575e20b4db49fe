"""Monte-Carlo step labels (Math-Shepherd, Wang et al. 2024).

Math-Shepherd ("Math-Shepherd: Verify and Reinforce LLMs Step-by-step without Human Annotations")
labels step i of a solution by completing the prefix that ends with it ``M`` times and checking
each completion's final answer:

* soft estimation SE: the fraction of completions that are right, ``value = successes / M``;
* hard estimation HE: 1 if *any* completion is right, else 0.

Here HE is generalised to ``hard = 1 if value > threshold else 0``; the default threshold 0.0 is
exactly HE (value > 0 iff successes >= 1). A value *at* the threshold (within
:data:`~prmflow.labelers.process._compare.TIE_TOLERANCE`) is labelled 0: with threshold 0.5 and
M = 4, 2 successes give 0 and 3 give 1. Indexing: ``successes[i]`` / ``rollouts[i]`` belong to the
prefix with ``k = i + 1`` steps (see :func:`prmflow.core.slicing.all_steps`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prmflow.labelers.process._compare import check_counts, compare


@dataclass(frozen=True)
class MCConfig:
    """Monte-Carlo labelling settings."""

    rollouts_per_step: int
    """Completions sampled from each prefix (Math-Shepherd's N). The engine samples this many; the
    labeller uses the counts it actually got, which may be fewer when generations failed."""
    threshold: float = 0.0
    """Hard label is 1 iff value > threshold; 0.0 is Math-Shepherd HE ("any success"). In [0, 1)."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        if isinstance(self.rollouts_per_step, bool) or not isinstance(self.rollouts_per_step, int):
            raise ValueError(f"rollouts_per_step must be an int, got {self.rollouts_per_step!r}")
        if self.rollouts_per_step < 1:
            raise ValueError(f"rollouts_per_step must be >= 1, got {self.rollouts_per_step}")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)):
            raise ValueError(f"threshold must be a finite number, got {self.threshold!r}")
        # threshold >= 1 would make every hard label 0 whatever the rollouts say.
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")


def mc_value(successes: int, rollouts: int) -> float | None:
    """``successes / rollouts``; None when nothing was rolled out (no evidence either way)."""
    check_counts("mc", successes, rollouts)
    return successes / rollouts if rollouts else None


def hard_label(value: float | None, threshold: float = 0.0) -> float | None:
    """1.0 if ``value > threshold`` else 0.0 (a tie is 0.0); None stays None."""
    if value is None:
        return None
    return 1.0 if compare(value, threshold) > 0 else 0.0


@dataclass(frozen=True)
class MCLabels:
    """Per-step Monte-Carlo values and labels of one trajectory; index i is step i (prefix k=i+1)."""

    successes: list[int]
    """Completions from prefix k=i+1 that reached a right outcome."""
    rollouts: list[int]
    """Completions sampled from prefix k=i+1; 0 = not measured."""
    values: list[float | None]
    """``successes / rollouts``, None where not measured (or the outcome, see ``mc_labels``)."""
    hard: list[float | None]
    """1.0 / 0.0 hard labels (HE generalised by the threshold), None where value is None."""
    soft: list[float | None]
    """Soft labels (SE): the value itself."""
    first_error: int
    """0-based index of the first step with hard label 0, -1 when there is none."""

    @property
    def rollouts_spent(self) -> int:
        """Total completions sampled for this trajectory."""
        return sum(self.rollouts)


def mc_labels(
    successes: Sequence[int],
    rollouts: Sequence[int] | None,
    config: MCConfig,
    *,
    outcome_correct: bool | None = None,
) -> MCLabels:
    """Math-Shepherd labels from per-step counts.

    ``rollouts=None`` means every step got ``config.rollouts_per_step`` completions. A step with 0
    rollouts has value and labels None, except that when ``outcome_correct`` is given the *last*
    step, if unmeasured, takes the trajectory's own outcome as its value (1.0 / 0.0): the prefix
    with k = n is the finished solution, so its value is its verified outcome and needs no rollouts.
    """
    n = len(successes)
    counts = [config.rollouts_per_step] * n if rollouts is None else list(rollouts)
    if len(counts) != n:
        raise ValueError(f"rollouts must have one entry per step ({n}), got {len(counts)}")
    values: list[float | None] = []
    for i, (s, m) in enumerate(zip(successes, counts, strict=True)):
        check_counts(f"step {i}", s, m)
        values.append(s / m if m else None)
    if outcome_correct is not None and n and values[-1] is None:
        values[-1] = 1.0 if outcome_correct else 0.0
    hard = [hard_label(v, config.threshold) for v in values]
    return MCLabels(
        successes=list(successes),
        rollouts=counts,
        values=values,
        hard=hard,
        soft=list(values),
        first_error=first_error(values, config.threshold),
    )


def first_error(values: Sequence[float | None], threshold: float = 0.0) -> int:
    """Exhaustive first error: the smallest i whose value is <= threshold (a tie counts), else -1.

    ``values[i]`` is the value of prefix k = i + 1. Unmeasured steps (None) are skipped: without
    rollouts a step cannot be shown wrong. With threshold 0.0 this is OmegaPRM's "first step whose
    prefix has MC value 0", the answer :mod:`~prmflow.labelers.process.binary_search` reaches with
    fewer rollouts when values are monotone.
    """
    for i, v in enumerate(values):
        if v is not None and compare(v, threshold) <= 0:
            return i
    return -1
