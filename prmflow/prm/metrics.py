"""Step-level metrics of PRM scores against reference labels (pure Python).

The conventions of :mod:`prmflow.analysis.gold`: a step is good iff its value is above ``threshold``
(0.5); a trajectory's first error is its first bad step (-1 if none); ProcessBench F1 is the harmonic
mean of the first-error accuracy on erroneous and on correct trajectories (Zheng et al. 2024,
"ProcessBench"); step accuracy counts the steps up to and including the reference first error,
where every convention for the steps after an error agrees.
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

    def to_dict(self) -> dict:
        return asdict(self)


def step_metrics(pairs: Sequence[tuple[Sequence[float | None], Sequence[float | None]]],
                 threshold: float = THRESHOLD) -> StepMetrics:
    """Metrics over (predicted scores, reference labels) per trajectory; trajectories with a missing
    value before either first error are left out."""
    hits_err = n_err = hits_ok = n_ok = 0
    step_hits = steps = 0
    used = 0
    for scores, labels in pairs:
        ref, pred = first_error(labels, threshold), first_error(scores, threshold)
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
        for s, y in zip(scores[:end], labels[:end], strict=True):
            if s is None or y is None:
                continue
            steps += 1
            step_hits += (s > threshold) == (y > threshold)
    acc_err = hits_err / n_err if n_err else None
    acc_ok = hits_ok / n_ok if n_ok else None
    f1 = None
    if acc_err is not None and acc_ok is not None:
        f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    return StepMetrics(used, n_err, acc_err, acc_ok, f1, step_hits / steps if steps else None, steps)
