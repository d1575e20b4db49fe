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

from prmflow.ids import content_id
from prmflow.labelers.process import (
    BinarySearch,
    BinarySearchConfig,
    MCConfig,
    RelativeConfig,
    mc_labels,
    relative_labels,
)
from prmflow.schemas import Problem, Rollout, StartState, StepLabel, Trajectory
from prmflow.segment import prefix_text
from prmflow.slicing import reverse_curriculum
from prmflow.trajectories import step_labels

Method = Literal["mc", "binary-search", "reverse-curriculum"]
METHODS: tuple[str, ...] = ("mc", "binary-search", "reverse-curriculum")


@dataclass(frozen=True)
class ProcessConfig:
    method: Method = "mc"
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
    correct_outcome: Literal["all_positive", "skip", "rollout"] = "all_positive"
    """Right-outcome trajectories: all_positive (every step 1, no rollouts; OmegaPRM's reading),
    skip (unlabeled), rollout (binary-search only: ignored, mc always rolls them out)."""
    stages: int = 4
    """reverse-curriculum: number of stages S."""
    curriculum_mode: Literal["steps", "words"] = "steps"
    """reverse-curriculum: cut by steps, or by fraction of words for prose without line breaks."""
    relative: dict[str, Any] | None = None
    """Also write relative_label (GenPRM/StepWiser) with these RelativeConfig settings."""
    batch_trajectories: int = 16
    """Trajectories whose start states go to the engine in one call (one call per round for
    binary search)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"process.method must be one of {METHODS}, got {self.method!r}")
        if self.rollouts < 1:
            raise ValueError(f"process.rollouts must be >= 1, got {self.rollouts}")
        if self.temperature <= 0:
            raise ValueError(f"process.temperature must be > 0 (rollouts must differ), got {self.temperature}")
        if self.batch_trajectories < 1:
            raise ValueError(f"process.batch_trajectories must be >= 1, got {self.batch_trajectories}")
        if self.stages < 1:
            raise ValueError(f"process.stages must be >= 1, got {self.stages}")
        MCConfig(rollouts_per_step=self.rollouts, threshold=self.threshold)
        self.relative_config()

    def relative_config(self) -> RelativeConfig | None:
        return RelativeConfig(**self.relative) if self.relative is not None else None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ProcessConfig:
        from prmflow.config import _from_dict

        return _from_dict(cls, dict(data or {}), "process")


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

    @property
    def step_index(self) -> int | None:
        return self.k - 1 if self.measures_step and self.k >= 1 else None


@dataclass
class Estimate:
    """What the engine and the outcome labeler made of one probe."""

    completions: list[tuple[str, str | None, float | None, str | None, int, str | None]] = field(default_factory=list)
    """(completion, final answer, outcome, outcome status, generated tokens, finish reason)."""
    cached_prompt_tokens: int = 0
    seed: int | None = None
    error: str | None = None

    @property
    def successes(self) -> int:
        return sum(1 for c in self.completions if c[2] is not None and c[2] >= 0.5)

    @property
    def rollouts(self) -> int:
        return len(self.completions)

    @property
    def tokens(self) -> int:
        return sum(c[4] for c in self.completions)

    def step_fields(self) -> dict:
        """The steps-row columns this estimate fills for the step it measures."""
        return {"mc_value": self.successes / self.rollouts, "mc_successes": self.successes,
                "mc_rollouts": self.rollouts, "rollout_tokens": self.tokens}


Estimator = Callable[[Sequence[Probe]], list[Estimate]]


@dataclass
class BatchOutput:
    steps: list[StepLabel] = field(default_factory=list)
    start_states: list[StartState] = field(default_factory=list)
    rollouts: list[Rollout] = field(default_factory=list)
    failures: list[tuple[Problem, Trajectory, Probe, str]] = field(default_factory=list)


def _correct(t: Trajectory) -> bool | None:
    return None if t.outcome is None else t.outcome >= 0.5


def _audit(out: BatchOutput, problem: Problem, t: Trajectory, probe: Probe, est: Estimate, method: str) -> None:
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
    for i, (text, answer, outcome, status, tokens, finish) in enumerate(est.completions):
        out.rollouts.append(Rollout(
            rollout_id=content_id(ss_id, i, est.seed), start_state_id=ss_id, trajectory_id=t.trajectory_id,
            problem_id=t.problem_id, k=probe.k, index=i, completion=text, final_answer=answer,
            outcome=outcome, outcome_status=status, generated_tokens=tokens, finish_reason=finish, seed=est.seed,
        ))


def _estimate_all(items, probes: list[Probe], estimate: Estimator, out: BatchOutput, method: str) -> dict[tuple[int, int], Estimate]:
    """Run one engine call for all probes; failed probes are reported, not estimated."""
    if not probes:
        return {}
    results = estimate(probes)
    found = {}
    for probe, est in zip(probes, results, strict=True):
        problem, t = items[probe.index]
        if est.error:
            out.failures.append((problem, t, probe, est.error))
            continue
        _audit(out, problem, t, probe, est, method)
        found[(probe.index, probe.k)] = est
    return found


def label_batch(items: Sequence[tuple[Problem, Trajectory]], config: ProcessConfig, estimate: Estimator,
                provenance: dict | None = None) -> BatchOutput:
    """Step labels (and the start states and rollouts behind them) for a batch of trajectories."""
    out = BatchOutput()
    if config.method == "binary-search":
        per_step = _binary_search(items, config, estimate, out)
    elif config.method == "reverse-curriculum":
        per_step = _reverse_curriculum(items, config, estimate, out)
    else:
        per_step = _monte_carlo(items, config, estimate, out)
    relative = config.relative_config()
    for (_, t), fields in zip(items, per_step, strict=True):
        rows = [dataclasses.replace(r, **f) for r, f in zip(step_labels(t, provenance), fields, strict=True)]
        if relative is not None and rows:
            values = [r.mc_value for r in rows]
            rows = [dataclasses.replace(r, relative_label=v) for r, v in zip(rows, relative_labels(values, relative), strict=True)]
        out.steps.extend(rows)
    return out


def _mc_fields(labels, method: str, tokens: list[int], first_error: int | None) -> list[dict]:
    return [
        {
            "mc_value": labels.values[i], "mc_successes": labels.successes[i] if labels.rollouts[i] else None,
            "mc_rollouts": labels.rollouts[i], "hard_label": labels.hard[i], "soft_label": labels.soft[i],
            "label": labels.hard[i], "first_error": None if first_error is None else i == first_error,
            "method": method, "rollout_tokens": tokens[i],
        }
        for i in range(len(labels.values))
    ]


def _monte_carlo(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput) -> list[list[dict]]:
    """Math-Shepherd: M rollouts from every step boundary k = 1..n-1; k = n is the outcome itself."""
    probes = [
        Probe(i, k, prefix_text(t.text, t.step_spans, k))
        for i, (_, t) in enumerate(items)
        for k in range(1, t.num_steps)
    ]
    found = _estimate_all(items, probes, estimate, out, "all-steps")
    mc = MCConfig(rollouts_per_step=config.rollouts, threshold=config.threshold)
    result = []
    for i, (_, t) in enumerate(items):
        n = t.num_steps
        succ = [found[(i, k)].successes if (i, k) in found else 0 for k in range(1, n + 1)]
        roll = [found[(i, k)].rollouts if (i, k) in found else 0 for k in range(1, n + 1)]
        tokens = [found[(i, k)].tokens if (i, k) in found else 0 for k in range(1, n + 1)]
        labels = mc_labels(succ, roll, mc, outcome_correct=_correct(t))
        result.append(_mc_fields(labels, "mc", tokens, labels.first_error if _correct(t) is not None else None))
    return result


def _binary_search(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput) -> list[list[dict]]:
    """OmegaPRM: wrong-outcome trajectories only; every round is one engine call for the whole batch."""
    bs_config = BinarySearchConfig(
        threshold=config.threshold, after_error=config.after_error,
        correct_outcome="skip" if config.correct_outcome == "skip" else "all_positive",
    )
    searches = {i: BinarySearch(t.num_steps, bool(_correct(t)), bs_config) for i, (_, t) in enumerate(items) if t.outcome is not None}
    measured: dict[tuple[int, int], Estimate] = {}
    failed: set[int] = set()
    active = {i: s for i, s in searches.items() if not s.done}
    while active:
        probes = [Probe(i, k, prefix_text(items[i][1].text, items[i][1].step_spans, k)) for i, s in active.items() for k in s.pending()]
        found = _estimate_all(items, probes, estimate, out, "binary-search")
        for p in probes:
            if (p.index, p.k) not in found:
                failed.add(p.index)
                continue
            measured[(p.index, p.k)] = found[(p.index, p.k)]
            if p.index not in failed:
                est = found[(p.index, p.k)]
                active[p.index].observe(p.k, est.successes, est.rollouts)
        active = {i: s for i, s in active.items() if not s.done and i not in failed}
    result = []
    for i, (_, t) in enumerate(items):
        n = t.num_steps
        fields = [{"method": "binary-search", "mc_rollouts": 0, "rollout_tokens": 0} for _ in range(n)]
        for k in range(1, n + 1):
            if (i, k) in measured:
                fields[k - 1].update(measured[(i, k)].step_fields())
        if i in searches and i not in failed:
            res = searches[i].result()
            for j, label in enumerate(res.labels):
                fields[j].update(hard_label=label, label=label,
                                 first_error=None if res.first_error is None else j == res.first_error)
        result.append(fields)
    return result


def _reverse_curriculum(items, config: ProcessConfig, estimate: Estimator, out: BatchOutput) -> list[list[dict]]:
    """R3: start states from near the end of each demonstration backwards, M rollouts each; the
    success rate per stage is the curriculum an RL trainer consumes (start_states shard)."""
    probes = []
    for i, (_, t) in enumerate(items):
        if config.curriculum_mode == "words":
            prefixes: list[str] = ["", t.text]
        else:
            prefixes = [prefix_text(t.text, t.step_spans, k) for k in range(t.num_steps + 1)]
        for spec in reverse_curriculum(prefixes, config.stages, config.curriculum_mode):
            k = spec.k if spec.k is not None else sum(1 for s in t.step_spans if s[1] <= spec.char_end)
            probes.append(Probe(i, k, t.text[: spec.char_end], stage=spec.stage, fraction=spec.fraction,
                                measures_step=spec.k is not None))
    found = _estimate_all(items, probes, estimate, out, "reverse-curriculum")
    result = []
    for i, (_, t) in enumerate(items):
        fields = [{"method": "reverse-curriculum", "mc_rollouts": 0, "rollout_tokens": 0} for _ in range(t.num_steps)]
        for p in probes:
            if p.index == i and (i, p.k) in found and p.step_index is not None:
                fields[p.step_index].update(found[(i, p.k)].step_fields())
        result.append(fields)
    return result
