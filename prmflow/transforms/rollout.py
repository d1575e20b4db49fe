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
from prmflow.core.dead_letters import error_reason, make_dead_letter
from prmflow.core.estimator import EngineEstimator
from prmflow.core.prompts import SamplingConfig
from prmflow.core.rollouts import ProcessConfig, label_batch, pass_count
from prmflow.samplers import SamplerConfig
from prmflow.schemas import to_row
from prmflow.transforms.cache import REUSED, StageCache
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count_dead
from prmflow.transforms.engines import engine
from prmflow.transforms.sample import DeterministicBatches, record_engine_metrics

START_STATES, ROLLOUTS, ENGINE = "start_states", "rollouts", "engine"
log = logging.getLogger("prmflow")


def sum_pairs(pairs) -> tuple[int, int]:
    """(right, judged) counts summed (a CombinePerKey function: takes its own outputs too)."""
    right = total = 0
    for r, n in pairs:
        right, total = right + r, total + n
    return right, total


class LabelStepsDoFn(beam.DoFn):
    def __init__(self, sampler: SamplerConfig, sampling: SamplingConfig, process: ProcessConfig,
                 outcome: OutcomeConfig, seed: int, provenance: dict, cache: StageCache | None = None) -> None:
        self.sampler_config, self.sampling, self.process_config = sampler, sampling, process
        self.outcome, self.seed, self.provenance, self.cache = outcome, seed, provenance, cache

    def setup(self) -> None:
        self.sampler = engine(self.sampler_config)
        self.labeler = self.outcome.make_labeler()
        self._done = 0

    def teardown(self) -> None:
        labeler = getattr(self, "labeler", None)
        if labeler is not None:
            labeler.close()

    def _label(self, batch, pass_counts=None) -> tuple[dict, dict[str, int]]:
        """The batch's rows, probe failures and engine totals: from the stage cache, else from the
        engine. Both paths go through the same plain form (``cache_entry.ROLLOUT``), so a resumed
        run's rows are the rows an uninterrupted run writes."""
        ids = [t.trajectory_id for _, t in batch]
        cached = self.cache.load(ids) if self.cache is not None else None
        if cached is not None:
            return cached, {f"{REUSED}{k}": v for k, v in cached["totals"].items()}
        # a batch's results must not depend on the batches before it (resumed runs, see cache.py)
        self.sampler.reset_prefix_cache()
        estimate = EngineEstimator(self.sampler, self.labeler, self.outcome.labeler, self.sampling,
                                   self.process_config, self.seed, batch)
        out = label_batch(batch, self.process_config, estimate, self.provenance, pass_counts)
        record_engine_metrics(estimate.totals)
        totals = {**estimate.totals, "batches": 1}
        if self.process_config.active is not None:
            totals["active_skipped"] = out.skipped
        plain = {
            "steps": [to_row(r) for r in out.steps],
            "start_states": [to_row(s) for s in out.start_states],
            "rollouts": [to_row(r) for r in out.rollouts],
            "failures": [{"trajectory_id": f.trajectory.trajectory_id, "k": f.probe.k, "prefix": f.probe.prefix,
                          "error": f.error} for f in out.failures],
            "totals": totals,
        }
        if self.cache is not None:
            self.cache.store(ids, plain)
        return plain, totals

    def process(self, batch, pass_counts=None):
        started = time.monotonic()
        out, totals = self._label(batch, pass_counts)
        yield from out["steps"]
        for s in out["start_states"]:
            yield beam.pvalue.TaggedOutput(START_STATES, s)
        for r in out["rollouts"]:
            yield beam.pvalue.TaggedOutput(ROLLOUTS, r)
        items = {t.trajectory_id: (p, t) for p, t in batch}
        for f in out["failures"]:
            reason = error_reason(f["error"])
            count_dead("rollout", reason)
            problem, t = items[f["trajectory_id"]]
            yield beam.pvalue.TaggedOutput(DEAD, make_dead_letter(
                "rollout", t.source, reason, f"start state k={f['k']} of trajectory {t.trajectory_id}: {f['error']}",
                f["prefix"], key=("rollout", t.trajectory_id, f["k"], reason),
                source_file=problem.source_file, location=problem.source_index,
            ))
        for key, value in totals.items():
            yield beam.pvalue.TaggedOutput(ENGINE, (f"rollout_{key}", value))
        beam.metrics.Metrics.counter(NAMESPACE, "trajectories_step_labeled").inc(len(batch))
        self._done += len(batch)
        log.info("%s: step-labeled %d trajectories so far (this worker; batch of %d: %d rollouts in %.1f s)",
                 self.process_config.method, self._done, len(batch), len(out["rollouts"]), time.monotonic() - started)


class LabelSteps(beam.PTransform):
    """(problem, trajectory) items -> (steps rows, start_states rows, rollouts rows, dead, engine)."""

    def __init__(self, sampler: SamplerConfig, sampling: SamplingConfig, process: ProcessConfig,
                 outcome: OutcomeConfig, seed: int, provenance: dict, cache: StageCache | None = None) -> None:
        super().__init__()
        self.dofn = LabelStepsDoFn(sampler, sampling, process, outcome, seed, provenance, cache)
        self.process_config = process

    def expand(self, items):
        side = []
        if self.process_config.adaptive is not None:  # each problem's pass rate over the whole run
            side = [beam.pvalue.AsDict(
                items
                | "KeyOutcomes" >> beam.FlatMap(lambda it: [] if (c := pass_count(it[1])) is None else [(it[1].problem_id, c)])
                | "PassCounts" >> beam.CombinePerKey(sum_pairs)
            )]
        outputs = (
            items
            | "BatchTrajectories" >> DeterministicBatches(self.process_config.batch_trajectories, lambda it: it[1].trajectory_id)
            | "Rollouts" >> beam.ParDo(self.dofn, *side).with_outputs(START_STATES, ROLLOUTS, DEAD, ENGINE, main="steps")
        )
        return outputs.steps, outputs[START_STATES], outputs[ROLLOUTS], outputs[DEAD], outputs[ENGINE]
