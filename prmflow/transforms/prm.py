"""PRM scoring as a stage: every step of every trajectory scored by a trained PRM, through RunInference.

(problem, trajectory) items are batched deterministically (by trajectory id), scored by
``PRMModelHandler`` (one :class:`prmflow.prm.scorer.PRMScorer` per worker, loaded once) and come out
as the same items with the PRM's per-step probabilities in ``Trajectory.step_scores``, which the step
rows carry into ``steps.prm_score``. Then ``consistency: {score: prm_score}`` weighs this round's
labels by the last round's PRM: MetaStone-S1's self-supervised loop, round k+1.

A batch whose forward pass raises fails the run: the PRM is a local model, so an exception there is a
bug or a broken model, not one bad row, and a trajectory silently left unscored would change the
weights without a trace. Each finished batch is kept in the stage cache.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from prmflow.prm.config import PRMScoreConfig
from prmflow.schemas import Problem, Trajectory
from prmflow.transforms.cache import StageCache
from prmflow.transforms.dead_letters import NAMESPACE
from prmflow.transforms.sample import CACHED, DeterministicBatches

log = logging.getLogger("prmflow")
Item = tuple[Problem, Trajectory]
Batch = tuple[Item, ...]


def _trajectory_key(item: Item) -> str:
    return item[1].trajectory_id


class PRMModelHandler(ModelHandler[Batch, tuple[tuple[float | None, ...], ...], Any]):
    """RunInference over a saved PRM; each example is one deterministic batch of items."""

    def __init__(self, config: PRMScoreConfig, cache: StageCache | None = None) -> None:
        super().__init__()
        self.config, self.cache = config, cache

    def load_model(self):
        from prmflow.prm.scorer import PRMScorer

        return PRMScorer(self.config.model, self.config.device, self.config.dtype, self.config.batch_size)

    def run_inference(self, batch: Sequence[Batch], model, inference_args=None) -> Iterable[PredictionResult]:
        out = []
        for example in batch:
            ids = [t.trajectory_id for _, t in example]
            scores = self.cache.load(ids) if self.cache is not None else None
            model_id = CACHED
            if scores is None or len(scores) != len(example):
                started = time.monotonic()
                scores = [tuple(s) for s in model.score_many([(p.prompt, t.steps) for p, t in example])]
                log.info("PRM scored %d trajectories in %.1f s (this worker)", len(example), time.monotonic() - started)
                if self.cache is not None:
                    self.cache.store(ids, scores)
                model_id = None
            out.append(PredictionResult(example, tuple(scores), model_id))
        return out

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}

    def get_metrics_namespace(self) -> str:
        return "prmflow_prm"

    def share_model_across_processes(self) -> bool:
        return False


def with_scores(prediction: PredictionResult):
    """Each item of a scored batch, its trajectory carrying the PRM's per-step scores."""
    cached = prediction.model_id == CACHED
    for (problem, trajectory), scores in zip(prediction.example, prediction.inference, strict=True):
        beam.metrics.Metrics.counter(NAMESPACE, "prm_scored_trajectories").inc()
        beam.metrics.Metrics.counter(NAMESPACE, "prm_scored_steps").inc(sum(s is not None for s in scores))
        if cached:
            beam.metrics.Metrics.counter(NAMESPACE, "prm_reused_trajectories").inc()
        yield problem, dataclasses.replace(trajectory, step_scores=tuple(scores))


class ScoreSteps(beam.PTransform):
    """(problem, trajectory) items -> the same items with ``step_scores`` from the PRM."""

    def __init__(self, config: PRMScoreConfig, cache: StageCache | None = None) -> None:
        super().__init__()
        self.config, self.cache = config, cache

    def expand(self, items):
        return (
            items
            | "Batch" >> DeterministicBatches(self.config.batch_trajectories, id_fn=_trajectory_key)
            | "Score" >> RunInference(PRMModelHandler(self.config, self.cache))
            | "AttachScores" >> beam.FlatMap(with_scores)
        )
