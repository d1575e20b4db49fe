"""Trajectory: one solution to a problem, sampled by a policy or imported, with its outcome."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from prmflow.schemas.base import arrow_schema, col, fast_init


@fast_init
@dataclass(frozen=True)
class Trajectory:
    trajectory_id: str = col(pa.string(), "content hash of (problem_id, origin, generator, sample_index, text)")
    problem_id: str = col(pa.string(), "the Problem this solves")
    source: str = col(pa.string(), "the input's name in the config")
    domain: str = col(pa.string(), "copied from the problem")
    origin: str = col(pa.string(), "imported | demonstration | sampled")
    text: str = col(pa.string(), "the whole solution text (thinking included)")
    steps: tuple[str, ...] = col(pa.list_(pa.string()), "the solution split into steps")
    step_spans: tuple[tuple[int, int], ...] = col(
        pa.list_(pa.list_(pa.int32())), "[start, end) character offsets of each step in text"
    )
    step_segments: tuple[str, ...] = col(pa.list_(pa.string()), "thinking | response, per step")
    generator: str | None = col(pa.string(), "model that wrote it, if known", default=None)
    sample_index: int | None = col(pa.int32(), "index among the samples of one problem", default=None)
    seed: int | None = col(pa.int64(), "sampler seed of this sample", default=None)
    thinking: str | None = col(pa.string(), "the <think>…</think> part, if any", default=None)
    response: str | None = col(pa.string(), "the part after thinking (the whole text if none)", default=None)
    final_answer: str | None = col(pa.string(), "answer extracted by the outcome labeler", default=None)
    outcome: float | None = col(pa.float64(), "our verdict in [0, 1]; null when it could not be judged", default=None)
    outcome_source: str | None = col(pa.string(), "labeler that produced outcome: math | exact | numeric | ...", default=None)
    outcome_status: str | None = col(
        pa.string(), "ok | no_answer | no_reference | parse_error | timeout | crash | sandbox_error | error", default=None
    )
    outcome_detail: str | None = col(pa.string(), "why the status is not ok", default=None)
    clean_outcome: float | None = col(
        pa.float64(), "the verdict before outcome.noise's channel changed it into outcome; null without a channel",
        default=None,
    )
    gold_outcome: float | None = col(pa.float64(), "imported truth: 1.0 / 0.0, null = unknown", default=None)
    gold_first_error: int | None = col(pa.int32(), "imported first wrong step: -1 = none, null = unknown", default=None)
    gold_step_labels: tuple[float | None, ...] | None = col(
        pa.list_(pa.float64()), "imported per-step truth (1.0 right, 0.0 wrong, 0.5 neutral)", default=None
    )
    step_scores: tuple[float | None, ...] | None = col(
        pa.list_(pa.float64()), "imported per-step scores of an external PRM", default=None
    )
    judge_first_error: int | None = col(
        pa.int32(), "the judge's first wrong step (plurality of votes): -1 = none, null = not judged or unparsed",
        default=None,
    )
    judge_step_scores: tuple[float, ...] | None = col(
        pa.list_(pa.float64()), "per step: fraction of parsed judge votes placing it before the first error", default=None
    )
    judge_outcome: float | None = col(pa.float64(), "the judge's verdict on the whole solution: 1.0 / 0.0", default=None)
    judge_votes: int | None = col(pa.int32(), "judge samples asked for (K)", default=None)
    judge_unparsed: int | None = col(pa.int32(), "judge samples whose verdict could not be parsed", default=None)
    judge_agreement: float | None = col(pa.float64(), "fraction of parsed votes equal to the plurality", default=None)
    consensus: bool | None = col(
        pa.bool_(), "judge and Monte-Carlo first errors agree (Qwen Lessons §3.1.3); null = not both known", default=None
    )
    consensus_reason: str | None = col(pa.string(), "agree, or why the two disagree or cannot be compared", default=None)
    finish_reason: str | None = col(pa.string(), "stop | length | ... from the sampler", default=None)
    prompt_tokens: int | None = col(pa.int32(), "prompt tokens of the sampling request", default=None)
    generated_tokens: int | None = col(pa.int32(), "tokens generated for this sample", default=None)
    cached_prompt_tokens: int | None = col(pa.int32(), "prompt tokens served from the prefix cache", default=None)
    metadata: dict | None = col(pa.string(), "source-specific extras, JSON", default=None, json_encoded=True)

    @property
    def num_steps(self) -> int:
        return len(self.steps)


TRAJECTORY_SCHEMA = arrow_schema(Trajectory, "trajectories")
