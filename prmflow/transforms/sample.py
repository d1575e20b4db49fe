"""Policy sampling through Beam RunInference: problems -> N trajectories each, with dead letters.

The ModelHandler wraps any prmflow sampler (vllm, hf, openai). RunInference gives one engine per
worker process, batching, its own metrics, and ``with_exception_handling()`` for batches whose call
raised; a request the engine refuses (prompt too long, HTTP 500 after retries) comes back as a
result with an error and becomes a dead letter on its own while the rest of its batch is kept.

Batches are formed deterministically before RunInference: requests are bucketed by request id and
sorted, so a rerun sends the engine the same batches in the same order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from prmflow.core.dead_letters import error_reason, make_dead_letter
from prmflow.core.prompts import SamplingConfig, sampling_request
from prmflow.core.segment import SegmentConfig, segment
from prmflow.core.trajectories import from_segmentation
from prmflow.samplers import SamplerConfig, SamplingRequest, SamplingResult
from prmflow.samplers.base import engine_totals
from prmflow.schemas import DeadLetter, Problem
from prmflow.sources import BadRecord
from prmflow.transforms.cache import REUSED, StageCache
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count_dead
from prmflow.transforms.engines import engine

log = logging.getLogger("prmflow")
Batch = tuple[tuple[Problem, SamplingRequest], ...]
ENGINE_METRICS = ("requests", "prompt_tokens", "generated_tokens", "cached_prompt_tokens", "failures")


class SamplerModelHandler(ModelHandler[Batch, tuple[SamplingResult, ...], Any]):
    """A RunInference handler over a prmflow sampler. Each example is a prebuilt deterministic batch;
    RunInference may group several, and they go to the engine in one call."""

    def __init__(self, config: SamplerConfig, max_batches_per_call: int = 1, cache: StageCache | None = None) -> None:
        super().__init__()
        self.config = config
        self.max_batches_per_call = max_batches_per_call
        self.cache = cache

    def load_model(self):
        return engine(self.config)

    def run_inference(self, batch: Sequence[Batch], model, inference_args=None) -> Iterable[PredictionResult]:
        requests = [req for example in batch for _, req in example]
        ids = [r.request_id for r in requests]
        results = self.cache.load(ids) if self.cache is not None else None
        model_id = CACHED
        if results is None or len(results) != len(requests):
            started = time.monotonic()
            # a batch's results must not depend on the batches before it (resumed runs, see cache.py)
            model.reset_prefix_cache()
            results = model.generate(requests)
            log.info("sampled %d requests in %.1f s (this worker)", len(requests), time.monotonic() - started)
            if len(results) != len(requests):
                raise RuntimeError(f"sampler returned {len(results)} results for {len(requests)} requests")
            record_engine_metrics(engine_totals(results))
            if self.cache is not None:
                self.cache.store(ids, list(results))
            model_id = None
        out, i = [], 0
        for example in batch:
            out.append(PredictionResult(example, tuple(results[i : i + len(example)]), model_id))
            i += len(example)
        return out

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.max_batches_per_call}

    def get_metrics_namespace(self) -> str:
        return "prmflow_sampler"

    def share_model_across_processes(self) -> bool:
        return False


CACHED = "stage-cache"
"""``PredictionResult.model_id`` of results taken from the stage cache instead of the engine."""


def prediction_totals(prediction: PredictionResult, prefix: str = "") -> list[tuple[str, int]]:
    """Engine counters of one prediction; those of cached results are counted as ``reused_*``."""
    reused = REUSED if prediction.model_id == CACHED else ""
    totals = {**engine_totals(prediction.inference), "batches": 1}
    return [(f"{prefix}{reused}{k}", v) for k, v in totals.items()]


def record_engine_metrics(totals: dict[str, int]) -> None:
    """Beam counters ``engine_<name>`` for one engine call's totals (``engine_totals``)."""
    for key, value in totals.items():
        beam.metrics.Metrics.counter(NAMESPACE, f"engine_{key}").inc(value)


def _request_key(pair) -> str:
    return pair[1].request_id


class DeterministicBatches(beam.PTransform):
    """Elements -> tuples of about ``batch_size``, the same on every run: bucketed by a hex content
    id (``id_fn``), sorted by it, then chunked."""

    def __init__(self, batch_size: int, id_fn=_request_key) -> None:
        super().__init__()
        self.batch_size, self.id_fn = batch_size, id_fn

    def expand(self, pairs):
        total = pairs | "CountRequests" >> beam.combiners.Count.Globally()
        return (
            pairs
            | "Bucket" >> beam.Map(
                lambda e, n, b=self.batch_size, f=self.id_fn: (int(f(e), 16) % max(1, math.ceil(n / b)), e),
                beam.pvalue.AsSingleton(total),
            )
            | "GroupBuckets" >> beam.GroupByKey()
            | "SortAndChunk" >> beam.FlatMap(self._chunks)
        )

    def _chunks(self, item):
        _, pairs = item
        ordered = sorted(pairs, key=self.id_fn)
        for i in range(0, len(ordered), self.batch_size):
            yield tuple(ordered[i : i + self.batch_size])


def sampling_requests(problem: Problem, sampling: SamplingConfig, seed: int) -> tuple[Problem, SamplingRequest]:
    return problem, sampling_request(problem, sampling, seed)


def request_dead_letter(stage: str, problem: Problem, request: SamplingRequest, reason: str, detail: str,
                        key: tuple | None = None, raw: str | None = None) -> DeadLetter:
    return make_dead_letter(
        stage, problem.source, reason, detail, request.prompt if raw is None else raw,
        key=key or (stage, problem.source, request.request_id, reason),
        source_file=problem.source_file, location=problem.source_index,
    )


class ToTrajectories(beam.DoFn):
    """Sampler results -> (problem, trajectory) per completion; failed requests -> dead letters."""

    def __init__(self, segment_config: SegmentConfig, max_steps: int, generator: str) -> None:
        self.segment_config, self.max_steps, self.generator = segment_config, max_steps, generator

    def process(self, prediction: PredictionResult):
        for (problem, request), result in zip(prediction.example, prediction.inference, strict=False):
            if result.error:
                reason = error_reason(result.error)
                count_dead("sample", reason)
                yield beam.pvalue.TaggedOutput(DEAD, request_dead_letter("sample", problem, request, reason, result.error))
                continue
            for c in result.completions:
                seg = segment(c.text, self.segment_config)
                try:
                    traj = from_segmentation(
                        problem, seg, origin="sampled", max_steps=self.max_steps,
                        generator=self.generator, sample_index=c.index, seed=request.seed,
                        finish_reason=c.finish_reason, prompt_tokens=result.prompt_tokens,
                        # a server that returns no token ids (OpenAI's own API) leaves the count unknown
                        generated_tokens=len(c.token_ids) if c.token_ids or not c.text else None,
                        cached_prompt_tokens=result.cached_prompt_tokens,
                        metadata={"request_id": request.request_id, "cumulative_logprob": c.cumulative_logprob},
                    )
                except BadRecord as e:
                    count_dead("segment", e.reason)
                    yield beam.pvalue.TaggedOutput(DEAD, request_dead_letter(
                        "segment", problem, request, e.reason, f"sample {c.index}: {e.detail}",
                        key=("segment", request.request_id, c.index, e.reason), raw=c.text,
                    ))
                    continue
                yield problem, traj


def failed_batch_dead_letters(failure):
    """A batch whose engine call raised: one dead letter per request, with the exception."""
    batch, exc = failure
    for example in batch:
        for problem, request in example:
            count_dead("sample", "sampler_error")
            yield request_dead_letter("sample", problem, request, "sampler_error", f"{type(exc).__name__}: {exc}")


class SampleTrajectories(beam.PTransform):
    """Problems -> ((problem, trajectory) items, dead letters, engine totals)."""

    def __init__(self, sampler: SamplerConfig, sampling: SamplingConfig, seed: int, segment_config: SegmentConfig,
                 max_steps: int, cache: StageCache | None = None) -> None:
        super().__init__()
        self.sampler, self.sampling, self.seed = sampler, sampling, seed
        self.segment_config, self.max_steps, self.cache = segment_config, max_steps, cache

    def expand(self, problems):
        requests = problems | "BuildRequests" >> beam.Map(sampling_requests, self.sampling, self.seed)
        predictions, errors = (
            requests
            | "Batch" >> DeterministicBatches(self.sampling.batch_size)
            | "Sample" >> RunInference(SamplerModelHandler(self.sampler, cache=self.cache)).with_exception_handling()
        )
        items, dead = predictions | "ToTrajectories" >> beam.ParDo(
            ToTrajectories(self.segment_config, self.max_steps, self.sampler.model)
        ).with_outputs(DEAD, main="items")
        failed = errors.failed_inferences | "FailedBatches" >> beam.FlatMap(failed_batch_dead_letters)
        engine = predictions | "EngineTotals" >> beam.FlatMap(prediction_totals)
        return requests, items, (dead, failed) | "FlattenSampleDead" >> beam.Flatten(), engine
