"""``exact`` (normalised string equality) and ``numeric`` (equality within a tolerance)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from prmflow.labelers.outcome.base import (
    Outcome,
    clean_number_text,
    extract_answer,
    find_answer,
    first_number,
)


def normalise(s: str) -> str:
    s = clean_number_text(s).lower()
    return re.sub(r"\s+", " ", s).strip()


def _answer_or_last_line(solution: str) -> str | None:
    answer, _ = extract_answer(solution)
    if answer is not None:
        return answer
    lines = [ln for ln in solution.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


class ExactLabeler:
    """The stated answer equals the reference after trimming, lowercasing and number clean-up."""

    name = "exact"

    def label(self, solution: str, reference: str | None) -> Outcome:
        if reference is None or not str(reference).strip():
            return Outcome(None, self.name, "no_reference", None, "the problem has no reference answer")
        answer = _answer_or_last_line(solution)
        if answer is None:
            return Outcome(0.0, self.name, "no_answer", None, "empty solution")
        ref, _ = extract_answer(reference)
        ok = normalise(answer) == normalise(ref if ref is not None else reference)
        return Outcome(1.0 if ok else 0.0, self.name, "ok", answer)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class NumericConfig:
    rel_tol: float = 1e-6
    """Relative tolerance (math.isclose)."""
    abs_tol: float = 1e-9
    """Absolute tolerance, for answers near zero."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        for name in ("rel_tol", "abs_tol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"outcome.options.{name} must be a finite number >= 0, got {v!r}")


class NumericLabeler:
    """The first number of the stated answer (``find_answer``: a marked answer, else the last stated
    quantity) equals the reference's within tolerance."""

    name = "numeric"

    def __init__(self, config: NumericConfig | None = None) -> None:
        self.config = config or NumericConfig()

    def label(self, solution: str, reference: str | None) -> Outcome:
        if reference is None or not str(reference).strip():
            return Outcome(None, self.name, "no_reference", None, "the problem has no reference answer")
        ref_text, _ = extract_answer(reference)
        ref = first_number(ref_text if ref_text is not None else reference)
        if ref is None:
            return Outcome(None, self.name, "parse_error", None, f"reference {reference!r} has no number")
        answer = find_answer(solution).answer
        value = first_number(answer) if answer else None
        if value is None:
            return Outcome(0.0, self.name, "no_answer", answer, "no number in the stated answer")
        ok = math.isclose(value, ref, rel_tol=self.config.rel_tol, abs_tol=self.config.abs_tol)
        return Outcome(1.0 if ok else 0.0, self.name, "ok", answer)

    def close(self) -> None:
        pass
