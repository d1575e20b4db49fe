"""Outcome-only step labels on Beam: batches of trajectories -> rollouts on the policy engine ->
steps, start_states and rollouts rows, with dead letters for start states the engine refused.

Not RunInference: binary search is a loop whose rounds depend on the previous round's outcomes, and
RunInference maps one batch to one call. Each DoFn call takes a deterministic batch of trajectories
and runs all of its engine rounds on the process's shared sampler (the same engine RunInference
uses for sampling), so every round sends the engine the start states of the whole batch at once and
all start states of one trajectory share the engine's prefix cache.
"""

from __future__ import annotations

import logging
import time

import apache_beam as beam

from prmflow.config import OutcomeConfig
from prmflow.ids import content_id
from prmflow.labelers.outcome import make_outcome_labeler
from prmflow.prompts import SamplingConfig, render_prompt
from prmflow.rollouts import Estimate, ProcessConfig, label_batch
from prmflow.samplers import SamplerConfig, SamplingRequest
from prmflow.samplers.shared import shared_sampler
from prmflow.schemas import DeadLetter, to_row
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count_dead
from prmflow.transforms.sample import DeterministicBatches, error_reason, record_engine_metrics

START_STATES, ROLLOUTS, ENGINE = "start_states", "rollouts", "engine"
log = logging.getLogger("prmflow")


class LabelStepsDoFn(beam.DoFn):
    def __init__(self, sampler: SamplerConfig, sampling: SamplingConfig, process: ProcessConfig,
                 outcome: OutcomeConfig, seed: int, provenance: dict) -> None:
        self.sampler_config, self.sampling, self.process_config = sampler, sampling, process
        self.outcome, self.seed, self.provenance = outcome, seed, provenance

    def setup(self) -> None:
        self.sampler = shared_sampler(self.sampler_config)
        self.labeler = make_outcome_labeler(self.outcome.labeler, self.outcome.options)
        self._done = 0

    def teardown(self) -> None:
        labeler = getattr(self, "labeler", None)
        if labeler is not None:
            labeler.close()

    def _estimator(self, batch, totals: dict):
        p = self.process_config

        def estimate(probes):
            requests = []
            for probe in probes:
                problem, t = batch[probe.index]
                rid = content_id("rollout", t.trajectory_id, probe.k, len(probe.prefix), self.seed,
                                 p.rollouts, p.temperature, p.top_p, p.max_tokens)
                requests.append(SamplingRequest(
                    request_id=rid, prompt=render_prompt(problem.prompt, self.sampling) + probe.prefix,
                    n=p.rollouts, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                    stop=self.sampling.stop, seed=int(rid[:12], 16),
                    logprobs=False,  # rollouts only need outcomes; logprobs cost ~16% throughput
                ))
            results = self.sampler.generate(requests)
            for key, value in record_engine_metrics(results).items():
                totals[key] = totals.get(key, 0) + value
            estimates = []
            for probe, req, res in zip(probes, requests, results, strict=True):
                if res.error:
                    estimates.append(Estimate(error=res.error, seed=req.seed))
                    continue
                problem = batch[probe.index][0]
                completions = []
                for c in res.completions:
                    o = self.labeler.label(probe.prefix + c.text, problem.reference_answer)
                    completions.append((c.text, o.final_answer, o.value, o.status, len(c.token_ids), c.finish_reason))
                estimates.append(Estimate(completions, res.cached_prompt_tokens, req.seed))
            return estimates

        return estimate

    def process(self, batch):
        started = time.monotonic()
        totals: dict[str, int] = {}
        out = label_batch(batch, self.process_config, self._estimator(batch, totals), self.provenance)
        for row in out.steps:
            yield to_row(row)
        for s in out.start_states:
            yield beam.pvalue.TaggedOutput(START_STATES, to_row(s))
        for r in out.rollouts:
            yield beam.pvalue.TaggedOutput(ROLLOUTS, to_row(r))
        for problem, t, probe, error in out.failures:
            reason = error_reason(error)
            count_dead("rollout", reason)
            yield beam.pvalue.TaggedOutput(DEAD, DeadLetter(
                dead_letter_id=content_id("rollout", t.trajectory_id, probe.k, reason),
                stage="rollout", source=t.source, reason=reason,
                detail=f"start state k={probe.k} of trajectory {t.trajectory_id}: {error}"[:2000],
                source_file=problem.source_file, location=problem.source_index,
                raw=probe.prefix, raw_bytes=len(probe.prefix.encode("utf-8")),
            ))
        for key, value in totals.items():
            yield beam.pvalue.TaggedOutput(ENGINE, (f"rollout_{key}", value))
        beam.metrics.Metrics.counter(NAMESPACE, "trajectories_step_labeled").inc(len(batch))
        self._done += len(batch)
        log.info("%s: step-labeled %d trajectories so far (this worker; batch of %d: %d rollouts in %.1f s)",
                 self.process_config.method, self._done, len(batch), len(out.rollouts), time.monotonic() - started)


class LabelSteps(beam.PTransform):
    """(problem, trajectory) items -> (steps rows, start_states rows, rollouts rows, dead, engine)."""

    def __init__(self, sampler: SamplerConfig, sampling: SamplingConfig, process: ProcessConfig,
                 outcome: OutcomeConfig, seed: int, provenance: dict) -> None:
        super().__init__()
        self.dofn = LabelStepsDoFn(sampler, sampling, process, outcome, seed, provenance)
        self.process_config = process

    def expand(self, items):
        outputs = (
            items
            | "BatchTrajectories" >> DeterministicBatches(self.process_config.batch_trajectories, lambda it: it[1].trajectory_id)
            | "Rollouts" >> beam.ParDo(self.dofn).with_outputs(START_STATES, ROLLOUTS, DEAD, ENGINE, main="steps")
        )
        return outputs.steps, outputs[START_STATES], outputs[ROLLOUTS], outputs[DEAD], outputs[ENGINE]
