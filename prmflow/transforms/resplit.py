"""``segment: {strategy: model}``: a model re-splits each trace into steps without changing its text.

Long thinking traces have no step markers; a rule (lines, paragraphs) cuts them into pieces that
are not moves of the reasoning. Every trajectory is first split by the rule (``segment.fallback``);
this stage asks the model for a split, and keeps it only when the model's steps are the trace's text
modulo whitespace (``core.segment.model_split``); otherwise the rule's split stands. Either way the
trajectory comes out once; ``model_split`` tallies say how many were re-split, refused or left
(imported per-step gold or scores are aligned to the source's steps, so those keep them).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.ml.inference.base import PredictionResult, RunInference

from prmflow.core.prompts import seeded_request
from prmflow.core.segment import Segmentation, SegmentConfig, model_split, split_prompt, split_region
from prmflow.ids import content_id
from prmflow.schemas import Problem, Trajectory
from prmflow.transforms.cache import StageCache
from prmflow.transforms.dead_letters import NAMESPACE
from prmflow.transforms.sample import DeterministicBatches, SamplerModelHandler

KEPT = "kept"


def _segmentation(t: Trajectory) -> Segmentation:
    return Segmentation(t.text, t.step_spans, t.step_segments, t.thinking, t.response or t.text)


class SplitRequests(beam.DoFn):
    def __init__(self, config: SegmentConfig, seed: int) -> None:
        self.config, self.seed = config, seed

    def process(self, item: tuple[Problem, Trajectory]):
        _, t = item
        if t.gold_step_labels is not None or t.step_scores is not None:
            beam.metrics.Metrics.counter(NAMESPACE, "model_split_kept_aligned_gold").inc()
            yield beam.pvalue.TaggedOutput(KEPT, (item, "kept_aligned_gold"))
            return
        start, end = split_region(_segmentation(t), self.config)
        rid = content_id("split", t.trajectory_id, self.seed, self.config.model_max_tokens)
        yield item, seeded_request(rid, split_prompt(t.text[start:end]), n=1, temperature=0.0, top_p=1.0,
                                   max_tokens=self.config.model_max_tokens, stop=(), logprobs=False)


class ApplySplits(beam.DoFn):
    def __init__(self, config: SegmentConfig, max_steps: int) -> None:
        self.config, self.max_steps = config, max_steps

    def process(self, prediction: PredictionResult):
        for ((problem, t), _), result in zip(prediction.example, prediction.inference, strict=True):
            seg = None if result.error or not result.completions else model_split(
                _segmentation(t), result.completions[0].text, self.config)
            if seg is None or len(seg.spans) > self.max_steps:
                status = "engine_error" if result.error else "refused"
                beam.metrics.Metrics.counter(NAMESPACE, f"model_split_{status}").inc()
                yield (problem, t), status
                continue
            beam.metrics.Metrics.counter(NAMESPACE, "model_split_accepted").inc()
            yield (problem, dataclasses.replace(t, steps=seg.steps, step_spans=seg.spans,
                                                step_segments=seg.segments)), "accepted"


class ModelSplit(beam.PTransform):
    """(problem, trajectory) items -> (the same, re-split where the model's split is faithful;
    (status, 1) tallies)."""

    def __init__(self, config: SegmentConfig, seed: int, max_steps: int, cache: StageCache | None = None) -> None:
        super().__init__()
        self.config, self.seed, self.max_steps, self.cache = config, seed, max_steps, cache

    def expand(self, items):
        built = items | "SplitRequests" >> beam.ParDo(SplitRequests(self.config, self.seed)).with_outputs(
            KEPT, main="requests")
        predictions, errors = (
            built.requests
            | "BatchSplits" >> DeterministicBatches(32)
            | "Split" >> RunInference(SamplerModelHandler(self.config.model, cache=self.cache)).with_exception_handling()
        )
        split = predictions | "ApplySplits" >> beam.ParDo(ApplySplits(self.config, self.max_steps))
        failed = errors.failed_inferences | "FailedSplits" >> beam.FlatMap(
            lambda failure: [(item, "engine_error") for example in failure[0] for item, _ in example])
        both = (split, failed, built[KEPT]) | "AllSplit" >> beam.Flatten()
        return both | "SplitItems" >> beam.Map(lambda x: x[0]), both | "SplitStatus" >> beam.Map(lambda x: x[1])
