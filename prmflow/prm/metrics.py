"""Step-level metrics of PRM scores against reference labels (pure Python).

The conventions of :mod:`prmflow.analysis.gold`: a step is good iff its value is above ``threshold``
(0.5); a trajectory's first error is its first bad step (-1 if none); ProcessBench F1 is the harmonic
mean of the first-error accuracy on erroneous and on correct trajectories (Zheng et al. 2024,
"ProcessBench"); step accuracy counts the steps up to and including the reference first error,
where every convention for the steps after an error agrees. Step AUC is threshold-free over the
same steps: the probability that a correct step scores above an erroneous one (a first error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

THRESHOLD = 0.5


def first_error(values: Sequence[float | None], threshold: float = THRESHOLD) -> int | None:
    """Index of the first value <= threshold, -1 if none; None if a value is missing before it."""
    for i, v in enumerate(values):
        if v is None:
            return None
        if v <= threshold:
            return i
    return -1


@dataclass(frozen=True)
class StepMetrics:
    trajectories: int
    erroneous: int
    acc_erroneous: float | None
    acc_correct: float | None
    processbench_f1: float | None
    step_accuracy: float | None
    steps_scored: int
    step_auc: float | None = None
    """P(a correct step scores above a first-error step), ties half; over the steps up to each first error."""
    threshold: float = THRESHOLD

    def to_dict(self) -> dict:
        return asdict(self)


def step_metrics(pairs: Sequence[tuple[Sequence[float | None], Sequence[float | None]]],
                 threshold: float = THRESHOLD, reference: float = THRESHOLD) -> StepMetrics:
    """Metrics over (predicted scores, reference labels) per trajectory; trajectories with a missing
    value before either first error are left out. References are binarised at ``reference`` (a step is
    correct when its label is above it), scores at ``threshold``."""
    hits_err = n_err = hits_ok = n_ok = 0
    step_hits = steps = 0
    used = 0
    good: list[float] = []
    bad: list[float] = []
    for scores, labels in pairs:
        ref, pred = first_error(labels, reference), first_error(scores, threshold)
        if ref is None or pred is None:
            continue
        used += 1
        if ref >= 0:
            n_err += 1
            hits_err += pred == ref
        else:
            n_ok += 1
            hits_ok += pred == -1
        end = len(labels) if ref < 0 else ref + 1
        for k, (s, y) in enumerate(zip(scores[:end], labels[:end], strict=True)):
            if s is None or y is None:
                continue
            steps += 1
            step_hits += (s > threshold) == (y > reference)
            (bad if k == ref else good).append(s)
    acc_err = hits_err / n_err if n_err else None
    acc_ok = hits_ok / n_ok if n_ok else None
    f1 = None
    if acc_err is not None and acc_ok is not None:
        f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    return StepMetrics(used, n_err, acc_err, acc_ok, f1, step_hits / steps if steps else None, steps,
                       auc(good, bad), threshold)


def auc(good: Sequence[float], bad: Sequence[float]) -> float | None:
    """P(a good score above a bad one), ties counting half (Mann-Whitney U over average ranks)."""
    if not good or not bad:
        return None
    ranked = sorted([(v, 1) for v in good] + [(v, 0) for v in bad])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(g for _, g in ranked[i:j]) * (i + j + 1) / 2
        i = j
    return (rank_sum - len(good) * (len(good) + 1) / 2) / (len(good) * len(bad))


def best_threshold(pairs: Sequence[tuple[Sequence[float | None], Sequence[float | None]]],
                   candidates: int = 200, reference: float = THRESHOLD) -> float:
    """The score threshold with the highest ProcessBench F1 on ``pairs`` (the references binarised at
    ``reference``); chosen on validation, then used unchanged on test data. Candidates: the midpoints between
    up to ``candidates`` quantiles of the scores; a tie goes to the candidate nearest 0.5."""
    values = sorted({v for scores, _ in pairs for v in scores if v is not None})
    if not values:
        return THRESHOLD
    if len(values) > candidates:
        values = [values[round(i * (len(values) - 1) / (candidates - 1))] for i in range(candidates)]
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)] + [values[-1]]
    refs = [([None if v is None else v for v in scores], [None if y is None else (1.0 if y > reference else 0.0)
                                                           for y in labels]) for scores, labels in pairs]
    best, best_key = THRESHOLD, None
    for t in cuts:
        f1 = _f1_at(refs, t)
        key = (f1, -abs(t - THRESHOLD))
        if best_key is None or key > best_key:
            best, best_key = t, key
    return float(best)


def _f1_at(pairs, threshold: float) -> float:
    hits_err = n_err = hits_ok = n_ok = 0
    for scores, labels in pairs:
        ref, pred = first_error(labels), first_error(scores, threshold)
        if ref is None or pred is None:
            continue
        if ref >= 0:
            n_err += 1
            hits_err += pred == ref
        else:
            n_ok += 1
            hits_ok += pred == -1
    a = hits_err / n_err if n_err else 0.0
    b = hits_ok / n_ok if n_ok else 0.0
    return 2 * a * b / (a + b) if a + b else 0.0
