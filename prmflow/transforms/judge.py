"""The judge on Beam: every trajectory rendered into the judge's template, K votes sampled through
RunInference (batched, one engine per worker, the judge's own sampler), parsed and aggregated into
the trajectory's judge columns; then consensus with the Monte-Carlo labels.

A trajectory is never lost to the judge: one whose prompt cannot be rendered (no reference for an
equivalence template) or whose request the engine refused keeps its row with empty judge columns,
and a dead letter (stage ``judge``) says why.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.ml.inference.base import PredictionResult, RunInference

from prmflow.core.dead_letters import error_reason, make_dead_letter
from prmflow.core.prompts import judge_request
from prmflow.judge import JudgeConfig, aggregate_votes, consensus, parse_vote, render_judge_prompt
from prmflow.schemas import Problem, Trajectory
from prmflow.transforms.cache import StageCache
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count_dead
from prmflow.transforms.sample import DeterministicBatches, SamplerModelHandler, prediction_totals

STAGE = "judge"


def _dead(problem: Problem, t: Trajectory, reason: str, detail: str, raw: str | None, rid: str | None):
    count_dead(STAGE, reason)
    return beam.pvalue.TaggedOutput(DEAD, make_dead_letter(
        STAGE, t.source, reason, f"trajectory {t.trajectory_id}: {detail}", raw,
        key=(STAGE, t.trajectory_id, rid, reason), source_file=problem.source_file, location=problem.source_index,
    ))


class BuildJudgeRequests(beam.DoFn):
    """(problem, trajectory) -> ((problem, trajectory), request); an unrenderable one passes on unjudged."""

    def __init__(self, judge: JudgeConfig, seed: int) -> None:
        self.judge, self.seed = judge, seed

    def setup(self) -> None:
        self.template = self.judge.template_spec

    def process(self, item: tuple[Problem, Trajectory]):
        problem, t = item
        j = self.judge
        try:
            prompt = render_judge_prompt(self.template, problem, t)
        except ValueError as e:
            reason = str(e).split(":", 1)[0] if str(e).split(":", 1)[0].isidentifier() else "unrenderable"
            yield _dead(problem, t, reason, str(e), t.text, None)
            yield beam.pvalue.TaggedOutput(UNJUDGED, item)
            return
        yield item, judge_request(problem, t, prompt, self.template.name, j.votes, j.temperature, j.top_p,
                                  j.max_tokens, self.seed)


UNJUDGED = "unjudged"


class ApplyVerdicts(beam.DoFn):
    """RunInference results -> trajectories with the aggregated verdict; refused requests pass on
    unjudged with a dead letter."""

    def __init__(self, judge: JudgeConfig) -> None:
        self.judge = judge

    def setup(self) -> None:
        self.template = self.judge.template_spec

    def process(self, prediction: PredictionResult):
        for ((problem, t), request), result in zip(prediction.example, prediction.inference, strict=True):
            if result.error:
                yield _dead(problem, t, error_reason(result.error), result.error, request.prompt, request.request_id)
                yield problem, t
                continue
            votes = [parse_vote(self.template, c.text, t.num_steps) for c in result.completions]
            verdict = aggregate_votes(self.template, votes, t.num_steps)
            beam.metrics.Metrics.counter(NAMESPACE, "judge_votes_unparsed").inc(verdict.unparsed)
            yield problem, dataclasses.replace(
                t, judge_first_error=verdict.first_error, judge_step_scores=verdict.step_scores,
                judge_outcome=verdict.outcome, judge_votes=verdict.votes, judge_unparsed=verdict.unparsed,
                judge_agreement=verdict.agreement,
            )


def failed_batch(failure):
    """A batch whose engine call raised: its trajectories pass on unjudged, each with a dead letter."""
    batch, exc = failure
    for example in batch:
        for (problem, t), request in example:
            yield _dead(problem, t, "sampler_error", f"{type(exc).__name__}: {exc}", request.prompt, request.request_id)
            yield problem, t


class JudgeTrajectories(beam.PTransform):
    """(problem, trajectory) items -> (judged items, dead letters, engine totals). Every item comes
    out once, judged or not."""

    def __init__(self, judge: JudgeConfig, seed: int, cache: StageCache | None = None) -> None:
        super().__init__()
        self.judge, self.seed, self.cache = judge, seed, cache

    def expand(self, items):
        built = items | "BuildJudgeRequests" >> beam.ParDo(BuildJudgeRequests(self.judge, self.seed)).with_outputs(
            DEAD, UNJUDGED, main="requests")
        predictions, errors = (
            built.requests
            | "BatchJudgeRequests" >> DeterministicBatches(self.judge.batch_size)
            | "Judge" >> RunInference(SamplerModelHandler(self.judge.sampler, cache=self.cache)).with_exception_handling()
        )
        judged = predictions | "ApplyVerdicts" >> beam.ParDo(ApplyVerdicts(self.judge)).with_outputs(DEAD, main="items")
        failed = errors.failed_inferences | "FailedJudgeBatches" >> beam.ParDo(failed_batch).with_outputs(
            DEAD, main="items")
        out = (judged.items, failed.items, built[UNJUDGED]) | "AllJudgedItems" >> beam.Flatten()
        dead = (built[DEAD], judged[DEAD], failed[DEAD]) | "FlattenJudgeDead" >> beam.Flatten()
        engine = predictions | "JudgeEngineTotals" >> beam.FlatMap(prediction_totals, "judge_")
        return out, dead, engine, built.requests


def mc_first_error(steps: list[dict]) -> int | None:
    """The labeling method's first error of one trajectory's step rows: the step marked
    ``first_error``, -1 when every step is labelled right, None when some step is unlabelled."""
    for r in steps:
        if r["first_error"]:
            return r["step_index"]
    if steps and all(r["label"] == 1.0 for r in steps):
        return -1
    return None


def _with_consensus(keyed):
    _, grouped = keyed
    trajectories, steps = list(grouped["trajectories"]), sorted(grouped["steps"], key=lambda r: r["step_index"])
    for t in trajectories:  # exactly one; steps may be none (a trajectory without step rows)
        kept, reason = consensus(t["judge_first_error"], mc_first_error(steps) if steps else None)
        yield dict(t, consensus=kept, consensus_reason=reason)
        for r in steps:
            yield beam.pvalue.TaggedOutput("steps", dict(r, consensus=kept))


class Consensus(beam.PTransform):
    """(trajectory rows, step rows) -> the same with ``consensus``: kept where the judge's first
    error equals the labeling method's (Qwen "Lessons of Developing PRMs" §3.1.3)."""

    def expand(self, tables):
        trajectories, steps = tables
        joined = (
            {"trajectories": trajectories | "KeyTrajectories" >> beam.Map(lambda r: (r["trajectory_id"], r)),
             "steps": steps | "KeySteps" >> beam.Map(lambda r: (r["trajectory_id"], r))}
            | "JoinByTrajectory" >> beam.CoGroupByKey()
            | "Agree" >> beam.FlatMap(_with_consensus).with_outputs("steps", main="trajectories")
        )
        return joined.trajectories, joined.steps
