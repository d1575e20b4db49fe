"""A seeded noisy channel around any outcome labeler: a stand-in for an imperfect verifier.

The channel flips a right verdict to wrong with probability ``rho1`` (false negative) and a wrong
verdict to right with probability ``rho0`` (false positive); ``p`` sets both (symmetric noise).
This is the class-conditional noise model of Natarajan et al. 2013 ("Learning with Noisy Labels"),
the same (rho0, rho1) that :mod:`prmflow.labelers.process.noise_aware` de-biases.

A flip is a function of ``(seed, key)`` alone, never of call order: the labeler keys a verdict by
the solution text and reference, so a rerun, a resumed shard or another worker gets the same noisy
verdict for the same solution, and identical solutions (two rollouts that wrote the same text) share
a verdict, as with a deterministic verifier. The clean verdict is kept beside the noisy one (``Outcome.clean_value``,
the ``clean_outcome`` columns), so a run measures its own label quality against the truth the
verifier saw. A verdict that could not be judged (None) passes through: noise changes answers,
not availability.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
from dataclasses import dataclass

from prmflow.core.section import require
from prmflow.labelers.outcome.base import Outcome, OutcomeLabeler

CORRECT_AT = 0.5  # prmflow.labelers.outcome.CORRECT_AT; repeated here to keep this module import-light


@dataclass(frozen=True)
class NoiseConfig:
    """The ``outcome.noise`` section: either ``p`` (symmetric) or ``rho0`` / ``rho1``."""

    p: float | None = None
    """Symmetric flip probability: rho0 = rho1 = p. In [0, 0.5) (0.5 carries no signal)."""
    rho0: float | None = None
    """False-positive rate: P(noisy right | clean wrong). In [0, 1)."""
    rho1: float | None = None
    """False-negative rate: P(noisy wrong | clean right). In [0, 1)."""
    seed: int = 0
    """The channel's seed; flips are a hash of (seed, key), so the same seed gives the same flips."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        for name in ("p", "rho0", "rho1"):
            value = getattr(self, name)
            require(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value)), f"outcome.noise.{name}", "a finite number or null", value)
        if self.p is not None:
            require(self.rho0 is None and self.rho1 is None, "outcome.noise.p",
                    "set alone (p is symmetric noise; use rho0/rho1 for class-conditional noise)", self.p)
            require(0 <= self.p < 0.5, "outcome.noise.p", "in [0, 0.5) (at 0.5 the verdict carries no signal)", self.p)
        else:
            require(self.rho0 is not None or self.rho1 is not None, "outcome.noise",
                    "a mapping with p, or rho0 and/or rho1", dataclasses.asdict(self))
            require(self.rho0 is None or 0 <= self.rho0 < 1, "outcome.noise.rho0", "in [0, 1)", self.rho0)
            require(self.rho1 is None or 0 <= self.rho1 < 1, "outcome.noise.rho1", "in [0, 1)", self.rho1)
            require(self.false_positive + self.false_negative < 1, "outcome.noise",
                    "rho0 + rho1 < 1 (otherwise a right verdict is no likelier than a wrong one)",
                    (self.rho0, self.rho1))
        require(isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
                "outcome.noise.seed", "an integer >= 0", self.seed)

    @property
    def false_positive(self) -> float:
        """rho0, whichever way it was given."""
        return float(self.p if self.p is not None else (self.rho0 or 0.0))

    @property
    def false_negative(self) -> float:
        """rho1, whichever way it was given."""
        return float(self.p if self.p is not None else (self.rho1 or 0.0))

    @property
    def youden_j(self) -> float:
        """Youden's J = TPR - FPR = 1 - rho0 - rho1 of the noisy verifier against the clean one."""
        return 1.0 - self.false_positive - self.false_negative


def uniform(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from (seed, key): the channel's only source of randomness."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode("utf-8", "surrogatepass")).digest()
    return (struct.unpack(">Q", digest[:8])[0] >> 11) / float(1 << 53)


def noisy_verdict(clean: float | None, key: str, config: NoiseConfig) -> float | None:
    """The verdict after the channel: 1.0 / 0.0 (partial credit is thresholded first), None kept."""
    if clean is None:
        return None
    right = clean >= CORRECT_AT
    flip = uniform(config.seed, key) < (config.false_negative if right else config.false_positive)
    return float(right != flip)


class NoisyLabeler:
    """Wraps an outcome labeler; every verdict goes through the channel, the clean one is kept."""

    def __init__(self, inner: OutcomeLabeler, config: NoiseConfig) -> None:
        self.inner, self.config = inner, config
        self.name = inner.name

    def _noisy(self, outcome: Outcome, solution: str, reference: object) -> Outcome:
        if outcome.value is None:
            return outcome
        # a judge's reference is the whole Problem: its id names it
        ref = getattr(reference, "problem_id", None) or repr(reference)
        noisy = noisy_verdict(outcome.value, f"{ref}\x1e{solution}", self.config)
        return dataclasses.replace(outcome, value=noisy, clean_value=outcome.value)

    def label(self, solution: str, reference: object) -> Outcome:
        return self._noisy(self.inner.label(solution, reference), solution, reference)

    def label_many(self, pairs: list[tuple[str, object]]) -> list[Outcome]:
        label_many = getattr(self.inner, "label_many", None)
        outcomes = label_many(pairs) if label_many else [self.inner.label(*pair) for pair in pairs]
        return [self._noisy(o, s, r) for o, (s, r) in zip(outcomes, pairs, strict=True)]

    def close(self) -> None:
        self.inner.close()


__all__ = ["NoiseConfig", "NoisyLabeler", "noisy_verdict", "uniform"]
