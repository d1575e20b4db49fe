"""Threshold comparison shared by the process labelers, with one definition of a tie.

Values here are ratios of small counts (``successes / rollouts``) and their quotients or
differences; ``0.3 - 0.1 < 0.2`` in binary floating point, so an exact ``==`` would make a tie
depend on rounding. Values within :data:`TIE_TOLERANCE` of the threshold count as *at* it, and
every labeler states which side a tie falls on.
"""

from __future__ import annotations

import math

TIE_TOLERANCE = 1e-9
"""Absolute distance under which a value counts as equal to its threshold."""


def compare(value: float, threshold: float) -> int:
    """-1 below the threshold, 0 at it (within :data:`TIE_TOLERANCE`), 1 above it."""
    if math.isclose(value, threshold, rel_tol=0.0, abs_tol=TIE_TOLERANCE):
        return 0
    return 1 if value > threshold else -1


def check_fraction(name: str, value: float | None) -> None:
    """Raise unless ``value`` is None or a number in [0, 1]."""
    if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1] or None, got {value!r}")


def check_counts(name: str, successes: int, rollouts: int) -> None:
    """Raise unless ``0 <= successes <= rollouts``."""
    if rollouts < 0:
        raise ValueError(f"{name} rollouts must be >= 0, got {rollouts}")
    if not 0 <= successes <= rollouts:
        raise ValueError(f"{name} successes must be in [0, rollouts={rollouts}], got {successes}")
