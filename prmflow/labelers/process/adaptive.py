"""Spending fewer rollouts per trustworthy step label: sequential stopping, rollout budgets and
probe order set by the problem's difficulty, and active selection by a judge's or a PRM's scores.

All three keep the label a method would give with its full budget wherever they can prove it, and
spend where the decision is close.

Sequential stopping (``process.sequential``). A start state's hard label is a decision on its
successes ``s`` out of a budget ``M``: alive iff ``s >= need(M)``, where ``need`` is 1 for
Math-Shepherd's "any success" (threshold 0), the smallest ``s`` with ``s / M > threshold`` for a
threshold, and the noise-aware binomial test's ``min_successes(M, rho0, alpha)`` under a noisy
verifier. Rollouts are drawn in rounds (1, 1, 2, 4, ... at most what can still matter) and a start
state stops as soon as the rest cannot change the decision: ``s >= need`` (alive) or
``s + (M - n) < need`` (dead). The hard label is then the one all ``M`` rollouts would have given
for the same draws; the soft value ``s / n`` comes from the ``n`` rollouts drawn (so it is less
precise on the start states that stopped early, which are those far from the threshold).

Difficulty (``process.adaptive``, binary search). A problem's pass rate ``p`` (the share of its
sampled solutions with a right outcome, Beta(1, 1)-smoothed) says how often a live prefix succeeds:
about ``p`` at the question and more further on. The rollout budget of a probe is the smallest
``M`` in ``[min_rollouts, max_rollouts]`` that finds a live prefix of success rate ``p`` alive with
probability ``confidence`` (``1 - (1 - p)^M >= confidence`` for "any success"; the binomial test's
power under noise). Easy problems get few rollouts per dead probe, hard ones many (EpicPRM,
arXiv 2503.02382). The same ``p`` sets the search's probe order: with a per-step survival
``r = p^(1/n)``, the first error of a wrong n-step solution falls on step j with probability
proportional to ``r^j (1 - r)``, and each probe is placed at the median of that distribution over
the interval still open, so hard problems (errors early) are probed early.

Active selection (``process.active``). With a judge's per-step scores (the share of votes placing
step j before the first error) or a PRM's (the probability that step j is right), a wrong
trajectory whose first error the scorer locates with probability ``>= confidence`` is labelled from
that location without rollouts and counted as skipped (ActPRM, arXiv 2504.10559).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from prmflow.core.section import require
from prmflow.labelers.process._compare import compare
from prmflow.labelers.process.noise_aware import binomial_tail, min_successes

AliveRule = Callable[[int, int], bool]
"""(successes, rollouts) -> whether the prefix is alive."""


def threshold_rule(threshold: float) -> AliveRule:
    """Alive iff ``s / m > threshold`` (a tie is dead): Math-Shepherd HE at threshold 0."""
    return lambda s, m: m > 0 and compare(s / m, threshold) > 0


def binomial_rule(rho0: float, alpha: float) -> AliveRule:
    """Alive iff ``s >= min_successes(m, rho0, alpha)``: the noise-aware test."""
    return lambda s, m: m > 0 and s >= min_successes(m, rho0, alpha)


def successes_needed(budget: int, alive: AliveRule) -> int:
    """The fewest successes out of ``budget`` that make a prefix alive; ``budget + 1`` if none do."""
    for s in range(budget + 1):
        if alive(s, budget):
            return s
    return budget + 1


def decision(successes: int, drawn: int, budget: int, need: int) -> bool | None:
    """True (alive) or False (dead) once ``budget - drawn`` more rollouts cannot change it, else None."""
    if successes >= need:
        return True
    if successes + (budget - drawn) < need:
        return False
    return None


def next_chunk(successes: int, drawn: int, budget: int, need: int, round_index: int) -> int:
    """Rollouts to draw in the next round: doubling (1, 1, 2, 4, ...), never more than what can
    still matter (``budget - drawn``), never fewer than the successes still missing."""
    remaining = budget - drawn
    grow = 1 if round_index == 0 else 2 ** max(0, round_index - 1)
    return max(1, min(remaining, max(grow, need - successes)))


@dataclass(frozen=True)
class AdaptiveConfig:
    """The ``process.adaptive`` section (binary search): rollouts per probe and probe order set by
    the problem's pass rate."""

    confidence: float = 0.9
    """Probability that a probe finds a live prefix (success rate = the problem's pass rate) alive;
    sets each probe's rollout budget."""
    min_rollouts: int = 2
    """Fewest rollouts a probe may be given."""
    max_rollouts: int | None = None
    """Most rollouts a probe may be given (default: process.rollouts)."""
    probe_order: bool = True
    """Place each probe at the median of the first error's distribution given the pass rate,
    instead of the middle of the open interval."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        require(0 < self.confidence < 1, "process.adaptive.confidence", "in (0, 1)", self.confidence)
        require(self.min_rollouts >= 1, "process.adaptive.min_rollouts", ">= 1", self.min_rollouts)
        require(self.max_rollouts is None or self.max_rollouts >= self.min_rollouts,
                "process.adaptive.max_rollouts", "null or >= process.adaptive.min_rollouts", self.max_rollouts)


ActiveScore = Literal["judge", "prm"]
ACTIVE_SCORES: tuple[str, ...] = ("judge", "prm")


@dataclass(frozen=True)
class ActiveConfig:
    """The ``process.active`` section: skip the rollouts of wrong trajectories whose first error a
    judge or a PRM already locates with confidence."""

    score: ActiveScore = "judge"
    """judge: the judge section's per-step vote shares (trajectories.judge_step_scores); prm: a PRM's
    per-step scores (trajectories.step_scores, imported or from the prm section)."""
    confidence: float = 0.9
    """Skip a trajectory when the scorer puts at least this probability on one first-error step."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        require(self.score in ACTIVE_SCORES, "process.active.score", f"one of {list(ACTIVE_SCORES)}", self.score)
        require(0.5 < self.confidence <= 1, "process.active.confidence", "in (0.5, 1]", self.confidence)


def pass_rate(correct: int, total: int) -> float:
    """A problem's pass rate with a Beta(1, 1) prior: ``(correct + 1) / (total + 2)``."""
    return (correct + 1) / (total + 2)


def observed_rate(value: float, rho: tuple[float, float] | None) -> float:
    """The success rate a verifier with error rates (rho0, rho1) reports for a true value."""
    if rho is None:
        return value
    rho0, rho1 = rho
    return rho0 + value * (1 - rho0 - rho1)


def adaptive_budget(rate: float, alive: AliveRule, config: AdaptiveConfig, default_max: int,
                    rho: tuple[float, float] | None = None) -> int:
    """The smallest budget in ``[min_rollouts, max_rollouts]`` whose test finds a live prefix of
    success ``rate`` alive with probability ``>= confidence`` (the largest when none does)."""
    hi = config.max_rollouts or default_max
    lo = min(config.min_rollouts, hi)
    q = observed_rate(rate, rho)
    for m in range(lo, hi + 1):
        if binomial_tail(m, q, successes_needed(m, alive)) >= config.confidence:
            return m
    return hi


def first_error_prior(n_steps: int, rate: float) -> list[float]:
    """P(first error at step j | the solution is wrong), j = 0..n-1, for a policy that solves the
    problem with probability ``rate``: a truncated geometric with per-step survival rate**(1/n)."""
    if n_steps <= 0:
        return []
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    r = rate ** (1.0 / n_steps)
    weights = [r**j * (1 - r) for j in range(n_steps)]
    total = sum(weights)
    return [w / total for w in weights]


def weighted_probe(lo: int, hi: int, prior: Sequence[float]) -> int:
    """The prefix length k in (lo, hi) that splits the first error's mass in the open interval most
    evenly: probing k asks "is the first error at a step < k?" (steps lo .. hi-1 remain)."""
    mass = [prior[j] for j in range(lo, hi)]
    total = sum(mass)
    if total <= 0:
        return (lo + hi) // 2
    best, best_gap, below = lo + 1, math.inf, 0.0
    for k in range(lo + 1, hi):
        below += prior[k - 1]
        gap = abs(below - (total - below))
        if gap < best_gap - 1e-12:
            best, best_gap = k, gap
    return best


def first_error_distribution(scores: Sequence[float | None], kind: ActiveScore) -> list[float] | None:
    """P(first error = j | the solution is wrong) from per-step scores, or None when a score is missing.

    judge: scores are the share of votes placing step j before the first error (non-increasing), so
    the votes' first errors fall on j with mass ``scores[j-1] - scores[j]`` (``scores[-1] = 1``); votes
    saying "no error" (the last score's mass) are spread nowhere: the outcome says there is one.
    prm: scores are independent probabilities that step j is right:
    ``P(first error = j) = prod_{i<j} p_i * (1 - p_j)``.
    Both are renormalised over the steps, since the outcome is known wrong."""
    if not scores or any(s is None or not math.isfinite(s) for s in scores):
        return None
    if kind == "judge":
        before = 1.0
        mass = []
        for s in scores:
            s = min(max(float(s), 0.0), 1.0)
            mass.append(max(before - s, 0.0))
            before = min(before, s)
    else:
        alive = 1.0
        mass = []
        for s in scores:
            s = min(max(float(s), 0.0), 1.0)
            mass.append(alive * (1 - s))
            alive *= s
    total = sum(mass)
    if total <= 0:
        return None
    return [m / total for m in mass]


def confident_first_error(scores: Sequence[float | None] | None, kind: ActiveScore, confidence: float) -> int | None:
    """The step the scorer puts ``>= confidence`` of the first error's mass on, else None."""
    if scores is None:
        return None
    dist = first_error_distribution(scores, kind)
    if dist is None:
        return None
    j = max(range(len(dist)), key=lambda i: (dist[i], -i))
    return j if dist[j] >= confidence else None


__all__ = ["ACTIVE_SCORES", "ActiveConfig", "AdaptiveConfig", "AliveRule", "adaptive_budget", "binomial_rule",
           "confident_first_error", "decision", "first_error_distribution", "first_error_prior", "next_chunk",
           "pass_rate", "successes_needed", "threshold_rule", "weighted_probe"]
