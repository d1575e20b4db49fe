"""Outcome-only step labeling over one batch of trajectories: plan start states, estimate their
Monte-Carlo values with an injected ``estimate`` function (the engine), turn counts into labels.

Pure code: the Beam layer (transforms/rollout.py) supplies the estimator backed by a sampler and an
outcome labeler, so every method here is unit-testable with a fake estimator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prmflow.core.section import from_mapping, require
from prmflow.core.segment import prefix_text
from prmflow.core.slicing import reverse_curriculum
from prmflow.core.trajectories import step_labels
from prmflow.ids import content_id
from prmflow.labelers.outcome import is_correct
from prmflow.labelers.process import (
    BinarySearch,
    BinarySearchConfig,
    MCConfig,
    RelativeConfig,
    mc_labels,
    relative_labels,
    run_rounds,
)
from prmflow.labelers.process.adaptive import (
    ActiveConfig,
    AdaptiveConfig,
    AliveRule,
    adaptive_budget,
    binomial_rule,
    confident_first_error,
    decision,
    first_error_prior,
    next_chunk,
    pass_rate,
    successes_needed,
    threshold_rule,
)
from prmflow.labelers.process.binary_search import first_error_labels
from prmflow.labelers.process.noise_aware import NoiseAwareConfig, noise_aware_labels
from prmflow.schemas import Problem, Rollout, StartState, StepLabel, Trajectory

METHODS: tuple[str, ...] = ("mc", "binary-search", "reverse-curriculum")
"""The methods prmflow ships; ``PROCESS_METHODS`` also holds registered ones (``register_process_method``)."""
AFTER_ERROR: tuple[str, ...] = ("negative", "unlabeled")
CORRECT_OUTCOME: tuple[str, ...] = ("all_positive", "skip")
CURRICULUM_MODES: tuple[str, ...] = ("steps", "words")


@dataclass(frozen=True)
class ProcessConfig:
    method: str = "mc"
    """mc (Math-Shepherd: every step boundary), binary-search (OmegaPRM: only the prefixes the
    search needs, wrong-outcome trajectories only), reverse-curriculum (R3: S start states from the
    end of a demonstration backwards)."""
    rollouts: int = 4
    """M: completions sampled from each start state."""
    threshold: float = 0.0
    """A prefix is alive iff its MC value > threshold (0: any success, Math-Shepherd HE)."""
    temperature: float = 1.0
    """Rollout sampling temperature (> 0: rollouts must differ to estimate a value)."""
    top_p: float = 1.0
    """Rollout nucleus mass."""
    max_tokens: int = 128
    """Tokens per rollout completion at most."""
    after_error: Literal["negative", "unlabeled"] = "negative"
    """binary-search: steps after the first error get 0 (OmegaPRM's hard labels) or null."""
    correct_outcome: Literal["all_positive", "skip"] = "all_positive"
    """binary-search, right-outcome trajectories: all_positive (every step 1, no rollouts; OmegaPRM's
    reading) or skip (unlabeled). mc always rolls every trajectory out."""
    stages: int = 4
    """reverse-curriculum: number of stages S."""
    curriculum_mode: Literal["steps", "words"] = "steps"
    """reverse-curriculum: cut by steps, or by fraction of words for prose without line breaks."""
    relative: RelativeConfig | None = None
    """Also write relative_label (GenPRM/StepWiser) with these settings."""
    batch_trajectories: int = 16
    """Trajectories whose start states go to the engine in one call (one call per round for
    binary search)."""
    noise_aware: NoiseAwareConfig | None = None
    """mc, binary-search: the verifier's error rates ({rho0, rho1} or {calibration: RUN_DIR}); soft
    labels are then de-biased values and hard labels (and binary search's alive/dead decisions) a
    binomial test against false positives, not "any success"."""
    sequential: bool = False
    """mc, binary-search: draw each start state's rollouts in rounds (1, 1, 2, 4, ...) and stop once
    the rest cannot change its hard label (the threshold's or the noise-aware test's decision)."""
    adaptive: AdaptiveConfig | None = None
    """binary-search: each probe's rollouts (at most max_rollouts, default `rollouts`) and the probe
    order set by the problem's pass rate ({confidence, min_rollouts, max_rollouts, probe_order})."""
    active: ActiveConfig | None = None
    """mc, binary-search: wrong trajectories whose first error the judge (score: judge) or a PRM
    (score: prm) locates with probability >= confidence are labelled from it without rollouts."""

    def __post_init__(self) -> None:
        for name, cls in (("relative", RelativeConfig), ("noise_aware", NoiseAwareConfig),
                          ("adaptive", AdaptiveConfig), ("active", ActiveConfig)):
            if isinstance(getattr(self, name), dict):  # Python callers may pass the YAML shape
                object.__setattr__(self, name, from_mapping(cls, getattr(self, name), f"process.{name}"))
        self._verify_args()

    def _verify_args(self) -> None:
        require(self.method in PROCESS_METHODS, "process.method", f"one of {list(PROCESS_METHODS)}", self.method)
        require(self.rollouts >= 1, "process.rollouts", ">= 1", self.rollouts)
        require(0 <= self.threshold < 1, "process.threshold", "in [0, 1)", self.threshold)
        # rollouts must differ to estimate a value
        require(self.temperature > 0, "process.temperature", "> 0 (rollouts must differ)", self.temperature)
        require(0 < self.top_p <= 1, "process.top_p", "in (0, 1]", self.top_p)
        require(self.max_tokens >= 1, "process.max_tokens", ">= 1", self.max_tokens)
        require(self.after_error in AFTER_ERROR, "process.after_error", f"one of {list(AFTER_ERROR)}", self.after_error)
        require(self.correct_outcome in CORRECT_OUTCOME, "process.correct_outcome", f"one of {list(CORRECT_OUTCOME)}",
                self.correct_outcome)
        require(self.stages >= 1, "process.stages", ">= 1", self.stages)
        require(self.curriculum_mode in CURRICULUM_MODES, "process.curriculum_mode", f"one of {list(CURRICULUM_MODES)}",
                self.curriculum_mode)
        require(self.batch_trajectories >= 1, "process.batch_trajectories", ">= 1", self.batch_trajectories)
        require(self.noise_aware is None or self.method in ("mc", "binary-search"), "process.noise_aware",
                "null unless process.method is 'mc' or 'binary-search'", self.method)
        require(not self.sequential or self.method in ("mc", "binary-search"), "process.sequential",
                "false unless process.method is 'mc' or 'binary-search'", self.method)
        require(self.adaptive is None or self.method == "binary-search", "process.adaptive",
                "null unless process.method is 'binary-search'", self.method)
        require(self.active is None or self.method in ("mc", "binary-search"), "process.active",
                "null unless process.method is 'mc' or 'binary-search'", self.method)

    def alive_rule(self) -> AliveRule:
        """How a start state's (successes, rollouts) decide its hard label: the noise-aware binomial
        test when the verifier's error rates are known, else value > threshold."""
        if self.noise_aware is not None:
            return binomial_rule(float(self.noise_aware.rho0), self.noise_aware.alpha)
        return threshold_rule(self.threshold)

    def noise_rates(self) -> tuple[float, float] | None:
        if self.noise_aware is None:
            return None
        return float(self.noise_aware.rho0), float(self.noise_aware.rho1)

    def relative_config(self) -> RelativeConfig | None:
        return self.relative

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ProcessConfig:
        return from_mapping(cls, data, "process")


@dataclass(frozen=True)
class Probe:
    """One start state to estimate: trajectory ``index`` in the batch, first ``k`` steps kept."""

    index: int
    k: int
    prefix: str
    stage: int | None = None
    fraction: float | None = None
    measures_step: bool = True
    """Whether the prefix ends exactly after step k (so it measures step k-1's value)."""
    rollouts: int | None = None
    """Completions to sample from it; None: process.rollouts."""
    chunk: int = 0
    """Round of a sequential estimate (0 = the first); later rounds get their own request seeds."""

    @property
    def step_index(self) -> int | None:
        return self.k - 1 if self.measures_step and self.k >= 1 else None


@dataclass(frozen=True)
class RolloutCompletion:
    """One rollout from a start state, graded."""

    text: str
    """The sampled continuation of the prefix."""
    final_answer: str | None
    """The answer the outcome labeler extracted from prefix + continuation."""
    outcome: float | None
    """The verdict on prefix + continuation; None when it could not be judged."""
    status: str | None
    """The outcome labeler's status (ok, no_answer, timeout, ...)."""
    tokens: int
    """Tokens generated for the continuation."""
    finish_reason: str | None
    """stop | length, from the sampler."""
    clean_outcome: float | None = None
    """The verdict before ``outcome.noise``'s channel; None without one."""
    seed: int | None = None
    """The seed of the request that sampled it, when it differs from its estimate's (sequential rounds)."""

    @property
    def correct(self) -> bool:
        return bool(is_correct(self.outcome))


@dataclass
class Estimate:
    """What the engine and the outcome labeler made of one probe."""

    completions: list[RolloutCompletion] = field(default_factory=list)
    cached_prompt_tokens: int = 0
    seed: int | None = None
    error: str | None = None

    @property
    def successes(self) -> int:
        return sum(1 for c in self.completions if c.correct)

    @property
    def rollouts(self) -> int:
        return len(self.completions)

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.completions)


Estimator = Callable[[Sequence[Probe]], list[Estimate]]


@dataclass
class StepFields:
    """The steps-row columns a labeling method fills for one step; the rest keep the row's values."""

    method: str
    mc_value: float | None = None
    mc_successes: int | None = None
    mc_rollouts: int | None = 0
    hard_label: float | None = None
    soft_label: float | None = None
    label: float | None = None
    first_error: bool | None = None
    rollout_tokens: int | None = 0

    def measured(self, est: Estimate) -> None:
        """Fill the Monte-Carlo columns from the estimate of the prefix that ends at this step."""
        self.mc_value = est.successes / est.rollouts
        self.mc_successes, self.mc_rollouts, self.rollout_tokens = est.successes, est.rollouts, est.tokens

    def apply(self, row: StepLabel) -> StepLabel:
        return dataclasses.replace(row, **dataclasses.asdict(self))


@dataclass
class BatchOutput:
    steps: list[StepLabel] = field(default_factory=list)
    start_states: list[StartState] = field(default_factory=list)
    rollouts: list[Rollout] = field(default_factory=list)
    failures: list[ProbeFailure] = field(default_factory=list)
    skipped: int = 0
    """Wrong trajectories labelled from a judge's or PRM's confident first error, without rollouts."""


@dataclass(frozen=True)
class ProbeFailure:
    """A start state the engine could not estimate (e.g. its prompt is too long): a dead letter."""

    problem: Problem
    trajectory: Trajectory
    probe: Probe
    error: str


def _audit(out: BatchOutput, t: Trajectory, probe: Probe, est: Estimate, method: str) -> None:
    """start_states and rollouts rows for one estimated probe."""
    ss_id = content_id(t.trajectory_id, probe.k, len(probe.prefix))
    out.start_states.append(StartState(
        start_state_id=ss_id, trajectory_id=t.trajectory_id, problem_id=t.problem_id, source=t.source,
        k=probe.k, prefix=probe.prefix, method=method, step_index=probe.step_index,
        stage=probe.stage, fraction=probe.fraction,
        rollouts=est.rollouts, successes=est.successes,
        success_rate=est.successes / est.rollouts if est.rollouts else None,
        cached_prompt_tokens=est.cached_prompt_tokens,
    ))
    for i, c in enumerate(est.completions):
        seed = est.seed if c.seed is None else c.seed
        out.rollouts.append(Rollout(
            rollout_id=content_id(ss_id, i, seed), start_state_id=ss_id, trajectory_id=t.trajectory_id,
            problem_id=t.problem_id, k=probe.k, index=i, completion=c.text, final_answer=c.final_answer,
            outcome=c.outcome, outcome_status=c.status, generated_tokens=c.tokens, finish_reason=c.finish_reason,
            seed=seed, clean_outcome=c.clean_outcome,
        ))


def _sequential(probes: list[Probe], estimate: Estimator, budgets: list[int], needs: list[int]) -> list[Estimate]:
    """Estimates drawn in rounds: each round one engine call for every start state still undecided,
    a start state stopping once its remaining rollouts cannot change its decision (``decision``).
    A failed round fails its start state (what it drew before is dropped with it)."""
    merged = [Estimate() for _ in probes]
    pending = list(range(len(probes)))
    rnd = 0
    while pending:
        asked = []
        for i in pending:
            est = merged[i]
            n = next_chunk(est.successes, est.rollouts, budgets[i], needs[i], rnd)
            asked.append(dataclasses.replace(probes[i], rollouts=n, chunk=rnd))
        results = estimate(asked)
        still = []
        for i, res in zip(pending, results, strict=True):
            est = merged[i]
            if rnd == 0:
                est.seed = res.seed
            if res.error:
                est.error = res.error
                continue
            est.completions.extend(c if c.seed is not None or rnd == 0 else dataclasses.replace(c, seed=res.seed)
                                   for c in res.completions)
            est.cached_prompt_tokens += res.cached_prompt_tokens
            if not res.completions:  # nothing came back: stop rather than ask forever
                continue
            if decision(est.successes, est.rollouts, budgets[i], needs[i]) is None:
                still.append(i)
        pending, rnd = still, rnd + 1
    return merged


def estimate_probes(items, probes: list[Probe], estimate: Estimator, out: BatchOutput, method: str,
                    config: ProcessConfig | None = None) -> dict[tuple[int, int], Estimate]:
    """Estimate every probe (one engine call, or rounds of calls when ``config.sequential``) and audit
    it into ``out`` (start_states and rollouts rows; failed probes as failures, not estimated):
    (batch index, k) -> Estimate for each probe the engine answered. What a method calls to spend
    rollouts, registered ones included."""
    if not probes:
        return {}
    if config is not None and config.sequential:
        rule = config.alive_rule()
        budgets = [p.rollouts or config.rollouts for p in probes]
        results = _sequential(probes, estimate, budgets, [successes_needed(m, rule) for m in budgets])
    else:
        results = estimate(probes)
    found = {}
    for probe, est in zip(probes, results, strict=True):
        problem, t = items[probe.index]
        if est.error:
            out.failures.append(ProbeFailure(problem, t, probe, est.error))
            continue
        _audit(out, t, probe, est, method)
        found[(probe.index, probe.k)] = est
    return found


@dataclass(frozen=True)
class MethodContext:
    """What ``label_batch`` hands a method besides the batch: the trajectories ``process.active``
    labels without rollouts, and the run-wide pass counts ``process.adaptive`` reads."""

    skip: dict[int, int]
    """Batch index -> first error, for the trajectories to label from the judge's or PRM's scores."""
    pass_counts: dict[str, tuple[int, int]] | None = None
    """problem_id -> (right outcomes, judged trajectories) over the whole run; None: not computed."""


MethodFn = Callable[[Sequence[tuple[Problem, Trajectory]], ProcessConfig, Estimator, "BatchOutput", MethodContext],
                    list[list[StepFields]]]
"""A labeling method: the batch, the process config, the engine as an estimator (``estimate(probes)``:
one engine call), the output to audit start states and rollouts into (``estimate_probes``), the
context -> one ``StepFields`` per step of every trajectory, in batch order."""

PROCESS_METHODS: dict[str, MethodFn] = {}


def register_process_method(name: str, method: MethodFn, *, replace: bool = False) -> None:
    """Make ``process.method: name`` label steps with ``method``. Register before the config is loaded,
    in a module your run imports (Beam workers in other processes must import it too). A taken name is
    refused unless ``replace``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a process method name must be a non-empty string, got {name!r}")
    if not callable(method):
        raise TypeError(f"register_process_method({name!r}, ...) takes a function, got {type(method).__name__}")
    if name in PROCESS_METHODS and not replace:
        raise ValueError(f"process method {name!r} is already registered; pass replace=True to replace it")
    PROCESS_METHODS[name] = method


def label_batch(items: Sequence[tuple[Problem, Trajectory]], config: ProcessConfig, estimate: Estimator,
                provenance: dict | None = None, pass_counts: dict[str, tuple[int, int]] | None = None) -> BatchOutput:
    """Step labels (and the start states and rollouts behind them) for a batch of trajectories.

    ``pass_counts``: problem_id -> (right outcomes, judged trajectories) over the whole run, for
    ``process.adaptive``; without it each problem's count is taken from its trajectories in the batch."""
    out = BatchOutput()
    skip = _active_skips(items, config)
    out.skipped = len(skip)
    per_step = PROCESS_METHODS[config.method](items, config, estimate, out, MethodContext(skip, pass_counts))
    relative = config.relative_config()
    for (_, t), fields in zip(items, per_step, strict=True):
        rows = [f.apply(r) for r, f in zip(step_labels(t, provenance), fields, strict=True)]
        if relative is not None and rows:
            values = [r.mc_value for r in rows]
            rows = [dataclasses.replace(r, relative_label=v) for r, v in zip(rows, relative_labels(values, relative), strict=True)]
        out.steps.extend(rows)
    return out


def _prefix(t: Trajectory, k: int) -> str:
    return prefix_text(t.text, t.step_spans, k)


def _active_skips(items, config: ProcessConfig) -> dict[int, int]:
    """Batch index -> first error, for the wrong trajectories the scorer of ``process.active``
    locates with confidence (labelled without rollouts)."""
    active = config.active
    if active is None:
        return {}
    skips = {}
    for i, (_, t) in enumerate(items):
        if t.outcome is None or is_correct(t.outcome) or t.num_steps == 0:
            continue
        scores = t.judge_step_scores if active.score == "judge" else t.step_scores
        if scores is None or len(scores) != t.num_steps:
            continue
        first = confident_first_error(scores, active.score, active.confidence)
        if first is not None:
            skips[i] = first
    return skips


def _skipped_fields(method: str, n: int, first: int, config: ProcessConfig) -> list[StepFields]:
    return [StepFields(method, hard_label=v, label=v, first_error=j == first, mc_rollouts=0)
            for j, v in enumerate(first_error_labels(n, first, config.after_error))]


def _monte_carlo(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput,
                 skip: dict[int, int] | None = None) -> list[list[StepFields]]:
    """Math-Shepherd: M rollouts from every step boundary k = 1..n-1; k = n is the outcome itself."""
    skip = skip or {}
    probes = [Probe(i, k, _prefix(t, k)) for i, (_, t) in enumerate(items) if i not in skip
              for k in range(1, t.num_steps)]
    found = estimate_probes(items, probes, estimate, out, "all-steps", config)
    mc = MCConfig(rollouts_per_step=config.rollouts, threshold=config.threshold)
    result = []
    for i, (_, t) in enumerate(items):
        if i in skip:
            result.append(_skipped_fields("mc", t.num_steps, skip[i], config))
            continue
        ests = [found.get((i, k)) for k in range(1, t.num_steps + 1)]
        counts = [e.successes if e else 0 for e in ests], [e.rollouts if e else 0 for e in ests]
        labels = mc_labels(*counts, mc, outcome_correct=is_correct(t.outcome))
        if config.noise_aware is not None:  # mc_value stays the observed rate; the labels account for noise
            aware = noise_aware_labels(*counts, config.noise_aware, config.rollouts,
                                       outcome_correct=is_correct(t.outcome))
            labels = dataclasses.replace(aware, values=labels.values)
        first = labels.first_error if t.outcome is not None else None
        result.append([
            StepFields(
                "mc", mc_value=labels.values[j], mc_successes=labels.successes[j] if labels.rollouts[j] else None,
                mc_rollouts=labels.rollouts[j], hard_label=labels.hard[j], soft_label=labels.soft[j],
                label=labels.hard[j], first_error=None if first is None else j == first,
                rollout_tokens=ests[j].tokens if ests[j] else 0,
            )
            for j in range(t.num_steps)
        ])
    return result


def pass_count(t: Trajectory) -> tuple[int, int] | None:
    """What a trajectory adds to its problem's (right outcomes, judged trajectories); None unjudged."""
    return None if t.outcome is None else (int(bool(is_correct(t.outcome))), 1)


def _pass_counts(items) -> dict[str, tuple[int, int]]:
    """The batch's own pass counts per problem (when the run-wide ones were not given)."""
    counts: dict[str, tuple[int, int]] = {}
    for _, t in items:
        add = pass_count(t)
        if add is not None:
            right, total = counts.get(t.problem_id, (0, 0))
            counts[t.problem_id] = (right + add[0], total + add[1])
    return counts


def _binary_search(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput,
                   skip: dict[int, int] | None = None,
                   pass_counts: dict[str, tuple[int, int]] | None = None) -> list[list[StepFields]]:
    """OmegaPRM: wrong-outcome trajectories only; every round is one engine call for the whole batch
    (``run_rounds``); a trajectory whose start state the engine refused keeps what was measured and
    gets no search labels. With ``process.adaptive`` each trajectory's probes get a rollout budget
    and an order from its problem's pass rate."""
    skip = skip or {}
    bs_config = BinarySearchConfig(threshold=config.threshold, after_error=config.after_error,
                                   correct_outcome=config.correct_outcome)
    judged = [i for i, (_, t) in enumerate(items) if t.outcome is not None and i not in skip]
    budgets: dict[int, int] = {}
    priors: dict[int, list[float]] = {}
    if config.adaptive is not None:
        counts = pass_counts if pass_counts is not None else _pass_counts(items)
        for i in judged:
            t = items[i][1]
            rate = pass_rate(*counts.get(t.problem_id, (0, 0)))
            budgets[i] = adaptive_budget(rate, config.alive_rule(), config.adaptive, config.rollouts,
                                         config.noise_rates())
            if config.adaptive.probe_order:
                priors[i] = first_error_prior(t.num_steps, rate)
    searches = [BinarySearch(items[i][1].num_steps, bool(is_correct(items[i][1].outcome)), bs_config,
                             alive=config.alive_rule(), prior=priors.get(i)) for i in judged]
    measured: dict[tuple[int, int], Estimate] = {}

    def answer(queries: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
        probes = [Probe(judged[s], k, _prefix(items[judged[s]][1], k), rollouts=budgets.get(judged[s]))
                  for s, k in queries]
        found = estimate_probes(items, probes, estimate, out, "binary-search", config)
        measured.update(found)
        return [
            (found[(p.index, p.k)].successes, found[(p.index, p.k)].rollouts) if (p.index, p.k) in found else None
            for p in probes
        ]

    results = dict(zip(judged, run_rounds(searches, answer), strict=True))
    per_step = []
    for i, (_, t) in enumerate(items):
        if i in skip:
            per_step.append(_skipped_fields("binary-search", t.num_steps, skip[i], config))
            continue
        fields = [StepFields("binary-search") for _ in range(t.num_steps)]
        for k in range(1, t.num_steps + 1):
            if (i, k) in measured:
                fields[k - 1].measured(measured[(i, k)])
        res = results.get(i)
        if res is not None:
            for j, label in enumerate(res.labels):
                fields[j].hard_label = fields[j].label = label
                fields[j].first_error = None if res.first_error is None else j == res.first_error
        per_step.append(fields)
    return per_step


def _reverse_curriculum(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput) -> list[list[StepFields]]:
    """R3: start states from near the end of each demonstration backwards, M rollouts each; the
    success rate per stage is the curriculum an RL trainer consumes (start_states shard)."""
    probes = []
    for i, (_, t) in enumerate(items):
        if config.curriculum_mode == "words":
            prefixes: list[str] = ["", t.text]
        else:
            prefixes = [_prefix(t, k) for k in range(t.num_steps + 1)]
        for spec in reverse_curriculum(prefixes, config.stages, config.curriculum_mode):
            k = spec.k if spec.k is not None else sum(1 for s in t.step_spans if s[1] <= spec.char_end)
            probes.append(Probe(i, k, t.text[: spec.char_end], stage=spec.stage, fraction=spec.fraction,
                                measures_step=spec.k is not None))
    found = estimate_probes(items, probes, estimate, out, "reverse-curriculum")
    result = []
    for i, (_, t) in enumerate(items):
        fields = [StepFields("reverse-curriculum") for _ in range(t.num_steps)]
        for p in probes:
            if p.index == i and (i, p.k) in found and p.step_index is not None:
                fields[p.step_index].measured(found[(i, p.k)])
        result.append(fields)
    return result


register_process_method("mc", lambda items, config, estimate, out, ctx: _monte_carlo(items, config, estimate, out, ctx.skip))
register_process_method("binary-search", lambda items, config, estimate, out, ctx: _binary_search(
    items, config, estimate, out, ctx.skip, ctx.pass_counts))
register_process_method("reverse-curriculum", lambda items, config, estimate, out, ctx: _reverse_curriculum(
    items, config, estimate, out))
