"""Monte-Carlo step labels that account for a noisy verifier.

With a verifier whose false-positive rate is rho0 (P(says right | wrong)) and false-negative rate
rho1 (P(says wrong | right)), the success rate observed from a prefix whose true value is v is

    q = rho0 + v * (1 - rho0 - rho1)

(the class-conditional noise model of Natarajan et al. 2013, "Learning with Noisy Labels"), so

* the unbiased value is ``clip((q - rho0) / (1 - rho0 - rho1), 0, 1)`` (:func:`debias`), the soft
  label here;
* Math-Shepherd's hard estimation ("good iff any of N rollouts succeeds") labels a dead prefix
  (v = 0) good with probability ``1 - (1 - rho0)^N``: 34% at rho0 = 0.05, N = 8. The hard label
  here is a one-sided binomial test instead: good iff the successes are more than a dead prefix
  would produce at level ``alpha``, i.e. ``successes >= min_successes(N, rho0, alpha)``, the
  smallest s with ``P(Binomial(N, rho0) >= s) <= alpha``. At rho0 = 0 that is s = 1, exactly
  Math-Shepherd's HE. The price is recall on live prefixes of low value; the ambiguity study
  (``prmflow study ambiguity``, docs/ambiguity.md) measures both sides.

(rho0, rho1) come from the config or from ``prmflow calibrate`` on a gold-labelled subset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prmflow.labelers.process._compare import check_counts
from prmflow.labelers.process.mc import MCConfig, MCLabels, mc_labels

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class NoiseAwareConfig:
    """The ``process.noise_aware`` section: the verifier's error rates, given or calibrated."""

    rho0: float | None = None
    """False-positive rate of the outcome verifier, in [0, 1)."""
    rho1: float | None = None
    """False-negative rate of the outcome verifier, in [0, 1); rho0 + rho1 < 1."""
    alpha: float = DEFAULT_ALPHA
    """Level of the hard-label test: a dead prefix is labelled good with probability <= alpha."""
    calibration: str | None = None
    """A run directory (or its manifest.json) where ``prmflow calibrate`` wrote an estimate; its
    (rho0, rho1) are read at load, instead of giving them here."""

    def __post_init__(self) -> None:
        if self.calibration is not None:
            if self.rho0 is not None or self.rho1 is not None:
                raise ValueError("process.noise_aware.calibration must be given without rho0/rho1, got both")
            rho0, rho1 = read_calibration(self.calibration)
            object.__setattr__(self, "rho0", rho0)
            object.__setattr__(self, "rho1", rho1)
        self._verify_args()

    def _verify_args(self) -> None:
        for name in ("rho0", "rho1"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                raise ValueError(f"process.noise_aware.{name} must be a number in [0, 1) (or give calibration), "
                                 f"got {value!r}")
        if self.rho0 + self.rho1 >= 1:
            raise ValueError(f"process.noise_aware must have rho0 + rho1 < 1 (a verifier with signal), "
                             f"got {self.rho0} + {self.rho1}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise ValueError(f"process.noise_aware.alpha must be in (0, 1), got {self.alpha!r}")


def read_calibration(path: str | Path) -> tuple[float, float]:
    """(rho0, rho1) from the ``calibration`` entry ``prmflow calibrate`` wrote into a manifest."""
    path = Path(path)
    manifest = path / "manifest.json" if path.is_dir() else path
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"process.noise_aware.calibration must name a run directory or manifest.json that "
                         f"prmflow calibrate wrote, got {str(path)!r} ({e})") from None
    cal = data.get("calibration") if isinstance(data, dict) else None
    if not isinstance(cal, dict) or cal.get("rho0") is None or cal.get("rho1") is None:
        raise ValueError(f"process.noise_aware.calibration must name a manifest with a calibration entry "
                         f"(run `prmflow calibrate {path}` first), got {str(path)!r}")
    return float(cal["rho0"]), float(cal["rho1"])


def debias(value: float | None, rho0: float, rho1: float) -> float | None:
    """``clip((value - rho0) / (1 - rho0 - rho1), 0, 1)``; None stays None."""
    if value is None:
        return None
    return min(1.0, max(0.0, (value - rho0) / (1.0 - rho0 - rho1)))


def binomial_tail(n: int, p: float, s: int) -> float:
    """P(Binomial(n, p) >= s)."""
    if s <= 0:
        return 1.0
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(s, n + 1))


def min_successes(rollouts: int, rho0: float, alpha: float = DEFAULT_ALPHA) -> int:
    """The fewest successes out of ``rollouts`` that a dead prefix reaches with probability <= alpha
    (1 when rho0 = 0: "any success"); ``rollouts + 1`` when even all of them would not be enough."""
    for s in range(1, rollouts + 1):
        if binomial_tail(rollouts, rho0, s) <= alpha:
            return s
    return rollouts + 1


def dead_prefix_good_rate(rollouts: int, rho0: float, successes_needed: int = 1) -> float:
    """How often a dead prefix is labelled good: ``1 - (1 - rho0)^N`` for "any success"."""
    return binomial_tail(rollouts, rho0, successes_needed)


def noise_aware_labels(
    successes: Sequence[int],
    rollouts: Sequence[int] | None,
    config: NoiseAwareConfig,
    rollouts_per_step: int,
    *,
    outcome_correct: bool | None = None,
) -> MCLabels:
    """Per-step labels under a noisy verifier: ``values`` and ``soft`` are the de-biased values,
    ``hard`` the binomial test. An unmeasured last step takes the outcome, as in
    :func:`~prmflow.labelers.process.mc.mc_labels` (one verdict, not a rate: it is not tested)."""
    raw = mc_labels(successes, rollouts, MCConfig(rollouts_per_step), outcome_correct=outcome_correct)
    rho0, rho1 = float(config.rho0), float(config.rho1)
    values: list[float | None] = []
    hard: list[float | None] = []
    for i, (s, m, v) in enumerate(zip(raw.successes, raw.rollouts, raw.values, strict=True)):
        check_counts(f"step {i}", s, m)
        if m == 0:  # the outcome itself, or unmeasured
            values.append(v)
            hard.append(None if v is None else float(v >= 0.5))
            continue
        values.append(debias(v, rho0, rho1))
        hard.append(float(s >= min_successes(m, rho0, config.alpha)))
    first = next((i for i, h in enumerate(hard) if h == 0.0), -1)
    return MCLabels(successes=raw.successes, rollouts=raw.rollouts, values=values, hard=hard, soft=list(values),
                    first_error=first)


__all__ = ["NoiseAwareConfig", "binomial_tail", "dead_prefix_good_rate", "debias", "min_successes",
           "noise_aware_labels", "read_calibration"]
