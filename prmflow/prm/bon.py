"""Best-of-N selection by step scores, and paired bootstrap intervals (pure Python).

A candidate set is, per problem, its N sampled solutions: ``answer`` (None when none was given),
``right`` (whether that answer is the reference one) and one score list per solution. A solution's
score is its lowest step score (a chain is as good as its weakest step; the aggregation of
Lightman et al. 2023, "Let's Verify Step by Step", and of ProcessBench's best-of-N use).

* best-of-N: the solution with the highest score (ties: the lowest sample index);
* PRM-weighted vote: the answer whose solutions' scores sum highest (self-consistency weighted by
  the verifier, as Math-Shepherd, Wang et al. 2024, combines its PRM with majority voting);
* majority vote: the most frequent answer (ties: the answer the lowest sample index gave);
* any-of-N: some solution is right (the ceiling); random pick: the expected accuracy of a random one.

:func:`paired_bootstrap` gives a 95% interval of the difference of two selectors' accuracies by
resampling problems with replacement (a seeded ``random.Random``: the same seed, the same interval).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    answer: str | None
    right: bool
    scores: Sequence[float | None]

    @property
    def score(self) -> float:
        """The lowest step score (missing scores ignored; a solution without any scores counts 0)."""
        return min((s for s in self.scores if s is not None), default=0.0)


Problem = Sequence[Candidate]


def best_of_n(problem: Problem) -> bool:
    if not problem:
        return False
    best = max(range(len(problem)), key=lambda k: (problem[k].score, -k))
    return problem[best].right


def weighted_vote(problem: Problem) -> bool:
    totals: dict[str, float] = {}
    first: dict[str, int] = {}
    for k, c in enumerate(problem):
        if c.answer is None:
            continue
        totals[c.answer] = totals.get(c.answer, 0.0) + c.score
        first.setdefault(c.answer, k)
    if not totals:
        return False
    winner = max(totals, key=lambda a: (totals[a], -first[a]))
    return any(c.right for c in problem if c.answer == winner)


def majority_vote(problem: Problem) -> bool:
    counts = Counter(c.answer for c in problem if c.answer is not None)
    if not counts:
        return False
    top = max(counts.values())
    winner = next(c.answer for c in problem if c.answer is not None and counts[c.answer] == top)
    return any(c.right for c in problem if c.answer == winner)


def any_of_n(problem: Problem) -> bool:
    return any(c.right for c in problem)


def random_pick(problem: Problem) -> float:
    return sum(c.right for c in problem) / len(problem) if problem else 0.0


SELECTORS = {"best-of-N": best_of_n, "weighted vote": weighted_vote, "majority vote": majority_vote,
             "any-of-N": any_of_n, "random pick": random_pick}


def per_problem(problems: Sequence[Problem], selector) -> list[float]:
    return [float(selector(p)) for p in problems]


def accuracy(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """mean(a - b) and its 95% percentile interval over ``resamples`` resamplings of the problems."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_bootstrap needs two equal non-empty lists, got {len(a)} and {len(b)}")
    diff = [x - y for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    n = len(diff)
    means = sorted(sum(diff[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]
    return sum(diff) / n, lo, hi
