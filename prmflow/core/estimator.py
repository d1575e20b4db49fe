"""The engine behind ``label_batch``'s estimator: start states -> rollout requests -> the policy ->
graded completions. Pure code (no Beam): the sampler and the outcome labeler are handed in, so the
same function runs on vLLM in a pipeline and on the fake backend in a millisecond test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prmflow.core.prompts import SamplingConfig, rollout_request
from prmflow.core.rollouts import Estimate, Estimator, Probe, ProcessConfig, RolloutCompletion
from prmflow.labelers.outcome import OutcomeLabeler, reference_of
from prmflow.samplers.base import Sampler, engine_totals
from prmflow.schemas import Problem, Trajectory


@dataclass
class EngineEstimator:
    """Estimates probes of one batch of trajectories on ``sampler``, grading every rollout of prefix
    + continuation with ``labeler``; ``totals`` sums the engine counters of every call."""

    sampler: Sampler
    labeler: OutcomeLabeler
    labeler_name: str
    sampling: SamplingConfig
    process: ProcessConfig
    seed: int
    batch: Sequence[tuple[Problem, Trajectory]]
    totals: dict[str, int] = field(default_factory=dict)

    def __call__(self, probes: Sequence[Probe]) -> list[Estimate]:
        p = self.process
        requests = []
        for probe in probes:
            problem, t = self.batch[probe.index]
            n = p.rollouts if probe.rollouts is None else probe.rollouts
            requests.append(rollout_request(problem, t.trajectory_id, probe.k, probe.prefix, self.sampling,
                                            n, p.temperature, p.top_p, p.max_tokens, self.seed, probe.chunk))
        results = self.sampler.generate(requests)
        for key, value in engine_totals(results).items():
            self.totals[key] = self.totals.get(key, 0) + value
        # grade every rollout of the call at once: a judge labeler sends them in one engine call
        graded = [(probe.prefix + c.text, reference_of(self.labeler_name, self.batch[probe.index][0]))
                  for probe, res in zip(probes, results, strict=True) if not res.error for c in res.completions]
        label_many = getattr(self.labeler, "label_many", None)
        verdicts = iter(label_many(graded) if label_many else [self.labeler.label(*g) for g in graded])
        estimates = []
        for req, res in zip(requests, results, strict=True):
            if res.error:
                estimates.append(Estimate(error=res.error, seed=req.seed))
                continue
            completions = []
            for c in res.completions:
                o = next(verdicts)
                completions.append(RolloutCompletion(c.text, o.final_answer, o.value, o.status, len(c.token_ids),
                                                     c.finish_reason, o.clean_value))
            estimates.append(Estimate(completions, res.cached_prompt_tokens, req.seed))
        return estimates


__all__ = ["EngineEstimator", "Estimator"]
