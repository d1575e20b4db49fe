"""First-error search by binary search over prefixes (OmegaPRM, Luo et al. 2024).

OmegaPRM ("Improve Mathematical Reasoning in Language Models by Automated Process Supervision")
locates the first wrong step of a solution whose final answer is wrong without estimating every
prefix: split the solution in the middle, estimate the Monte-Carlo value of that prefix, and keep
the half that still contains the transition from "recoverable" (value > 0) to "dead" (value 0).

Conventions (k = number of steps in a prefix, ``0 <= k <= n``; step i is judged by prefix k=i+1):

* The full trajectory, ``k = n``, is known dead from its wrong outcome: it is never rolled out.
* ``k = 0`` (the bare question) is never rolled out either. The search looks for the smallest
  ``k in [1, n]`` whose value is ``<= threshold`` ("dead"); ``lo = 0`` is only a sentinel meaning
  "no dead prefix below hi", so whether the question itself is solvable does not matter. This is
  the same quantity an exhaustive Math-Shepherd pass over ``k = 1..n`` measures
  (:func:`prmflow.labelers.process.mc.first_error`).
* Invariant: prefix ``hi`` is dead and every probed prefix ``<= lo`` (``lo >= 1``) is alive. Probing
  ``mid``: alive → ``lo = mid`` (the first ``mid`` steps are fine, search right); dead → ``hi = mid``
  (the first error is at or before step ``mid - 1``, search left). Stop when ``hi == lo + 1``.
* First error (0-based step index) = smallest dead k − 1 = ``hi - 1``.

Exactness: if values are monotone non-increasing in k (a prefix that cannot be recovered stays
unrecoverable when extended, the premise of OmegaPRM), the dead prefixes form a suffix ``[k*, n]``
and the search returns ``k* - 1``, the same first error as the exhaustive pass, after
``ceil(log2 n)`` probes instead of ``n - 1`` (``probes_per_round = 1``). With noisy, non-monotone
estimates it returns *a* dead prefix whose predecessor probe was alive, which may differ.

Labels: steps before the first error 1.0, the first error 0.0, steps after it by ``after_error``.

The search is a batched state machine so an engine sees big batches: each :class:`BinarySearch`
says which prefixes it wants this round (:meth:`BinarySearch.pending`), and :func:`run_rounds`
gathers the pending prefixes of *all* trajectories into one call to the estimator per round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from prmflow.labelers.process._compare import check_counts
from prmflow.labelers.process.adaptive import threshold_rule, weighted_probe

AfterError = Literal["negative", "unlabeled"]
AFTER_ERROR: tuple[str, ...] = ("negative", "unlabeled")
CorrectOutcome = Literal["all_positive", "skip"]
CORRECT_OUTCOME: tuple[str, ...] = ("all_positive", "skip")


@dataclass(frozen=True)
class BinarySearchConfig:
    """OmegaPRM binary-search settings. The rollouts per probe are the estimator's business."""

    threshold: float = 0.0
    """A prefix is dead iff its MC value <= threshold (a tie is dead). 0.0 is OmegaPRM's "MC = 0",
    and matches :class:`~prmflow.labelers.process.mc.MCConfig` (hard label 1 iff value > threshold)."""
    after_error: AfterError = "negative"
    """Steps after the first error: "negative" → 0.0 (OmegaPRM's hard labels: once the prefix is
    dead every longer prefix is too) or "unlabeled" → None (only what the search showed)."""
    correct_outcome: CorrectOutcome = "all_positive"
    """Trajectories whose outcome is right: "all_positive" → every step 1.0 with no rollouts,
    "skip" → every step None. Either way ``first_error`` is -1."""
    probes_per_round: int = 1
    """Prefixes probed per round, evenly spaced inside the open interval (lo, hi). 1 is binary
    search; p > 1 cuts the interval into p+1 parts, trading rollouts for fewer (engine) rounds."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.after_error not in AFTER_ERROR:
            raise ValueError(f"after_error must be one of {AFTER_ERROR}, got {self.after_error!r}")
        if self.correct_outcome not in CORRECT_OUTCOME:
            raise ValueError(
                f"correct_outcome must be one of {CORRECT_OUTCOME}, got {self.correct_outcome!r}"
            )
        if self.probes_per_round < 1:
            raise ValueError(f"probes_per_round must be >= 1, got {self.probes_per_round}")


def first_error_labels(n_steps: int, first: int, after_error: AfterError) -> list[float | None]:
    """Labels of a solution whose first wrong step is ``first``: 1.0 before it, 0.0 at it, and after it
    0.0 ("negative") or None ("unlabeled")."""
    after = 0.0 if after_error == "negative" else None
    return [1.0] * first + [0.0] + [after] * (n_steps - first - 1)


@dataclass(frozen=True)
class BinarySearchResult:
    """What a finished search found for one trajectory."""

    first_error: int | None
    """0-based index of the first wrong step; -1 when the outcome is right (no error to find);
    None when a wrong trajectory has no steps to blame (``n_steps == 0``)."""
    step_values: dict[int, tuple[int, int]]
    """Prefix length k → (successes, rollouts) for every prefix probed. k = n is not in it: the
    outcome decides it without rollouts."""
    rollouts_spent: int
    """Completions sampled for this trajectory, summed over probes."""
    labels: list[float | None]
    """Per step: 1.0 before the first error, 0.0 at it, ``after_error`` after it."""
    rounds: int
    """Rounds in which this trajectory had a probe."""


class BinarySearch:
    """OmegaPRM first-error search for one trajectory, advanced one round at a time.

    Usage: while not ``done``: for each k in ``pending()`` call ``observe(k, successes,
    rollouts)``; once every pending k of the round is observed the interval narrows and the next
    round's probes appear. ``result()`` when done. See the module docstring for the k convention.
    """

    def __init__(self, n_steps: int, outcome_correct: bool, config: BinarySearchConfig | None = None, *,
                 alive: Callable[[int, int], bool] | None = None, prior: Sequence[float] | None = None) -> None:
        """``alive(successes, rollouts)`` decides a probe (default: value > threshold; the noise-aware
        binomial test under a noisy verifier); ``prior`` (one weight per step: P(first error there))
        places each probe at the prior's median over the open interval instead of its middle."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if prior is not None and len(prior) != n_steps:
            raise ValueError(f"prior must have one weight per step ({n_steps}), got {len(prior)}")
        self.n_steps = n_steps
        self.outcome_correct = outcome_correct
        self.config = config or BinarySearchConfig()
        self._alive = alive or threshold_rule(self.config.threshold)
        self._prior = list(prior) if prior is not None else None
        self.step_values: dict[int, tuple[int, int]] = {}
        self.rounds = 0
        # lo: largest prefix known alive (0 = sentinel), hi: smallest prefix known dead (n from the outcome).
        self._lo = 0
        self._hi = n_steps
        self._round: dict[int, tuple[int, int] | None] = {}
        if not self.done:
            self._plan_round()

    @property
    def done(self) -> bool:
        """True once the first error is pinned down (or nothing needs searching)."""
        return self.outcome_correct or self.n_steps == 0 or self._hi - self._lo <= 1

    def pending(self) -> list[int]:
        """Prefix lengths k still wanting an MC estimate this round, ascending; [] when done."""
        if self.done:
            return []
        return [k for k, seen in self._round.items() if seen is None]

    def observe(self, k: int, successes: int, rollouts: int) -> None:
        """Record the estimate of prefix k, which must be pending; advance when the round is full."""
        if self.done or self._round.get(k, ()) is not None:
            raise ValueError(f"k must be one of the pending prefixes {self.pending()}, got {k}")
        check_counts(f"prefix k={k}", successes, rollouts)
        if rollouts < 1:
            raise ValueError(f"rollouts must be >= 1 for a probed prefix, got {rollouts}")
        self._round[k] = (successes, rollouts)
        self.step_values[k] = (successes, rollouts)
        if all(seen is not None for seen in self._round.values()):
            self._close_round()

    def result(self) -> BinarySearchResult:
        """The first error and labels; raises if the search is not done."""
        if not self.done:
            raise RuntimeError(f"search is not done: prefixes {self.pending()} still need estimates")
        n, cfg = self.n_steps, self.config
        labels: list[float | None]
        if self.outcome_correct:
            first: int | None = -1
            labels = [1.0 if cfg.correct_outcome == "all_positive" else None] * n
        elif n == 0:
            first, labels = None, []
        else:
            first = self._hi - 1
            labels = first_error_labels(n, first, cfg.after_error)
        return BinarySearchResult(
            first_error=first,
            step_values=dict(self.step_values),
            rollouts_spent=sum(m for _, m in self.step_values.values()),
            labels=labels,
            rounds=self.rounds,
        )

    def _plan_round(self) -> None:
        lo, hi, p = self._lo, self._hi, self.config.probes_per_round
        width = hi - lo
        if width - 1 <= p:
            ks = list(range(lo + 1, hi))
        elif p == 1 and self._prior is not None:
            ks = [weighted_probe(lo, hi, self._prior)]
        else:
            # Evenly spaced interior points; spacing width/(p+1) >= 1 keeps them distinct.
            ks = [lo + width * j // (p + 1) for j in range(1, p + 1)]
        self._round = dict.fromkeys(ks)

    def _close_round(self) -> None:
        self.rounds += 1
        observed = {k: v for k, v in self._round.items() if v is not None}
        dead = [k for k, (s, m) in observed.items() if not self._alive(s, m)]
        hi = min(dead, default=self._hi)
        # Only alive probes below the new hi may move lo: with non-monotone noise an alive probe
        # above a dead one says nothing about the left interval.
        alive = [k for k in observed if k < hi and k not in dead]
        self._hi, self._lo = hi, max(alive, default=self._lo)
        self._round = {}
        if not self.done:
            self._plan_round()

    def __repr__(self) -> str:
        return (
            f"BinarySearch(n_steps={self.n_steps}, outcome_correct={self.outcome_correct}, "
            f"lo={self._lo}, hi={self._hi}, pending={self.pending()})"
        )


Estimator = Callable[[list[tuple[int, int]]], list[tuple[int, int] | None]]
"""Takes ``(search_index, k)`` queries, returns ``(successes, rollouts)`` for each, in order, or None
where it could not estimate the prefix."""


def run_rounds(searches: Sequence[BinarySearch], estimate: Estimator) -> list[BinarySearchResult | None]:
    """Drive many searches to completion with one ``estimate`` call per round.

    Each round collects every pending ``(search_index, k)`` across ``searches`` (index into the
    given sequence), calls ``estimate`` once with all of them, and feeds the answers back. The
    number of calls is the largest number of rounds any one search needs (``ceil(log2 n_max)`` for
    binary search), however many searches there are. An answer of None (the engine could not
    estimate that prefix) abandons its search: its result is None, the others go on.
    """
    abandoned: set[int] = set()
    while True:
        queries = [(i, k) for i, s in enumerate(searches) if not s.done and i not in abandoned for k in s.pending()]
        if not queries:
            break
        answers = estimate(queries)
        if len(answers) != len(queries):
            raise ValueError(
                f"estimate must return one (successes, rollouts) per query ({len(queries)}), got {len(answers)}"
            )
        for (i, k), answer in zip(queries, answers, strict=True):
            if answer is None:
                abandoned.add(i)
            elif i not in abandoned:
                searches[i].observe(k, *answer)
    return [None if i in abandoned else s.result() for i, s in enumerate(searches)]
