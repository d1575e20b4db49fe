"""Relative step labels from consecutive Monte-Carlo values (GenPRM / StepWiser style).

An absolute MC value mixes how good a step is with how hard the problem is: a correct step of a
hard problem can have value 0.2. Relative labels judge a step by how much it changed the value:

* GenPRM's Relative Progress Estimation (Zhao et al. 2025, "GenPRM: Scaling Test-Time Compute of
  Process Reward Models via Generative Reasoning"): ``P_i = v_i / v_{i-1}``, label 1 iff
  ``P_i >= epsilon`` (``mode="ratio"``);
* StepWiser (Xiong et al. 2025, "StepWiser: Stepwise Generative Judges for Wiser Reasoning")
  compares consecutive Q-values in the same way, by ratio or by difference (``mode="difference"``:
  ``v_i - v_{i-1} >= threshold``), and by its Rel-Effective reward (``mode="effective"``), the
  effective reward of Setlur et al. 2024 ("Rewarding Progress: Scaling Automated Process Verifiers
  for LLM Reasoning"): ``Q_i + alpha * (Q_mu(i) - Q_mu(i-1)) > threshold`` (default 0), where
  ``Q_mu`` is the value under a best-of-K prover, ``1 - (1 - Q)^K`` (K = 4, alpha = 0.4 as in
  StepWiser's setup).

Indexing: ``values[i]`` is the value of the prefix with k = i + 1 steps (step i's prefix); the
value before step 0 is the bare question's, ``v_{-1}``, passed as ``empty_prefix`` when measured
and ``config.empty_prefix_value`` (default 1.0: the first step is judged by its absolute value)
otherwise. A value at the threshold (within
:data:`~prmflow.labelers.process._compare.TIE_TOLERANCE`) reaches it: label 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prmflow.labelers.process._compare import check_fraction, compare

RelativeMode = Literal["ratio", "difference", "effective"]
RELATIVE_MODES: tuple[str, ...] = ("ratio", "difference", "effective")
ZeroPrevious = Literal["by_current", "negative", "unlabeled"]
ZERO_PREVIOUS: tuple[str, ...] = ("by_current", "negative", "unlabeled")

DEFAULT_RATIO_THRESHOLD = 0.8
"""GenPRM's RPE threshold epsilon (Zhao et al. 2025): a step may lose up to 20% of the value."""
DEFAULT_DIFFERENCE_THRESHOLD = 0.0
"""A step is good iff it does not lower the value."""


@dataclass(frozen=True)
class RelativeConfig:
    """Relative-label settings."""

    mode: RelativeMode = "ratio"
    """"ratio": ``v_i / v_{i-1}``; "difference": ``v_i - v_{i-1}``."""
    threshold: float | None = None
    """Label 1 iff the ratio/difference >= threshold (effective: > threshold). None: 0.8 for ratio
    (GenPRM's epsilon), 0.0 for difference and effective. Ratio thresholds must be >= 0, difference thresholds in [-1, 1]."""
    empty_prefix_value: float = 1.0
    """``v_{-1}`` when the bare question's value was not measured. 1.0 makes step 0's ratio its own
    value; in [0, 1]."""
    zero_previous: ZeroPrevious = "by_current"
    """Ratio mode, ``v_{i-1} == 0`` (ratio undefined): "by_current" → 1 iff ``v_i > 0`` (the step
    recovered a dead prefix), "negative" → 0, "unlabeled" → None. Difference mode never divides."""
    alpha: float = 0.4
    """Effective mode: weight of the prover's advantage ``Q_mu(i) - Q_mu(i-1)``; >= 0."""
    prover_k: int = 4
    """Effective mode: the prover is best-of-K of the policy, ``Q_mu = 1 - (1 - Q)^K``; >= 1."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        if self.mode not in RELATIVE_MODES:
            raise ValueError(f"mode must be one of {RELATIVE_MODES}, got {self.mode!r}")
        if self.threshold is not None:
            if not math.isfinite(self.threshold):
                raise ValueError(f"threshold must be finite, got {self.threshold}")
            if self.mode == "ratio" and self.threshold < 0:
                raise ValueError(f"threshold must be >= 0 for mode 'ratio', got {self.threshold}")
            if self.mode in ("difference", "effective") and not -1.0 <= self.threshold <= 1.0:
                raise ValueError(f"threshold must be in [-1, 1] for mode {self.mode!r}, got {self.threshold}")
        if not 0.0 <= self.empty_prefix_value <= 1.0:
            raise ValueError(f"empty_prefix_value must be in [0, 1], got {self.empty_prefix_value}")
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        if isinstance(self.prover_k, bool) or not isinstance(self.prover_k, int) or self.prover_k < 1:
            raise ValueError(f"prover_k must be an integer >= 1, got {self.prover_k!r}")
        if self.zero_previous not in ZERO_PREVIOUS:
            raise ValueError(f"zero_previous must be one of {ZERO_PREVIOUS}, got {self.zero_previous!r}")

    @property
    def resolved_threshold(self) -> float:
        """The threshold in force: the configured one or the mode's default."""
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_RATIO_THRESHOLD if self.mode == "ratio" else DEFAULT_DIFFERENCE_THRESHOLD


def relative_progress(
    values: Sequence[float | None],
    config: RelativeConfig,
    *,
    empty_prefix: float | None = None,
) -> list[float | None]:
    """Per step, ``v_i / v_{i-1}`` or ``v_i - v_{i-1}``; None if either value is missing or, in
    ratio mode, ``v_{i-1} == 0``. A missing value is not bridged from an earlier one: a step is
    only compared with its immediate predecessor."""
    check_fraction("empty_prefix", empty_prefix)
    for i, v in enumerate(values):
        check_fraction(f"values[{i}]", v)
    previous = config.empty_prefix_value if empty_prefix is None else empty_prefix
    out: list[float | None] = []
    for v in values:
        if v is None or previous is None:
            out.append(None)
        elif config.mode == "difference":
            out.append(v - previous)
        elif config.mode == "effective":
            out.append(v + config.alpha * (prover_value(v, config.prover_k) - prover_value(previous, config.prover_k)))
        else:
            out.append(v / previous if previous > 0 else None)
        previous = v
    return out


def prover_value(value: float, k: int) -> float:
    """The value under a best-of-K prover: the chance that one of K independent rollouts succeeds."""
    return 1.0 - (1.0 - value) ** k


def relative_labels(
    values: Sequence[float | None],
    config: RelativeConfig,
    *,
    empty_prefix: float | None = None,
) -> list[float | None]:
    """1.0 / 0.0 per step by comparing :func:`relative_progress` with the threshold (a tie is 1.0).

    None where the step's own value is missing, or its predecessor's is (no bridging), or in ratio
    mode the predecessor is 0 with ``zero_previous="unlabeled"``.
    """
    threshold = config.resolved_threshold
    progress = relative_progress(values, config, empty_prefix=empty_prefix)
    previous = config.empty_prefix_value if empty_prefix is None else empty_prefix
    labels: list[float | None] = []
    for v, p in zip(values, progress, strict=True):
        if p is not None:
            # Rel-Effective is a strict "> 0" (StepWiser); the ratio and difference rules reach a tie
            reached = compare(p, threshold) > 0 if config.mode == "effective" else compare(p, threshold) >= 0
            labels.append(1.0 if reached else 0.0)
        elif v is None or previous is None:
            labels.append(None)
        elif config.zero_previous == "by_current":  # ratio mode, previous == 0
            labels.append(1.0 if compare(v, 0.0) > 0 else 0.0)
        elif config.zero_previous == "negative":
            labels.append(0.0)
        else:
            labels.append(None)
        previous = v
    return labels
