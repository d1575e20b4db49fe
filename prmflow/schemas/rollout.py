"""StartState and Rollout: the audit trail of outcome-only step labeling."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from prmflow.schemas.base import arrow_schema, col, fast_init


@fast_init
@dataclass(frozen=True)
class StartState:
    start_state_id: str = col(pa.string(), "content hash of (trajectory_id, k, char_end)")
    trajectory_id: str = col(pa.string(), "trajectory or demonstration the prefix is cut from")
    problem_id: str = col(pa.string(), "the Problem")
    source: str = col(pa.string(), "the input's name in the config")
    k: int = col(pa.int32(), "steps of the trajectory kept in the prefix")
    prefix: str = col(pa.string(), "the exact prefix text (first k steps)")
    method: str = col(pa.string(), "all-steps | reverse-curriculum | binary-search")
    step_index: int | None = col(
        pa.int32(), "the step whose MC value this state measures (k - 1); null for none (k = 0, a cut inside a step)",
        default=None,
    )
    stage: int | None = col(pa.int32(), "reverse-curriculum stage: 0 = nearest the end", default=None)
    fraction: float | None = col(pa.float64(), "share of the solution kept in the prefix", default=None)
    rollouts: int | None = col(pa.int32(), "rollouts sampled from this state", default=None)
    successes: int | None = col(pa.int32(), "rollouts that reached a right outcome", default=None)
    success_rate: float | None = col(pa.float64(), "successes / rollouts", default=None)
    cached_prompt_tokens: int | None = col(pa.int64(), "prompt tokens served from the prefix cache", default=None)


@fast_init
@dataclass(frozen=True)
class Rollout:
    rollout_id: str = col(pa.string(), "content hash of (start_state_id, index, seed)")
    start_state_id: str = col(pa.string(), "the StartState it continues")
    trajectory_id: str = col(pa.string(), "the trajectory the start state was cut from")
    problem_id: str = col(pa.string(), "the Problem")
    k: int = col(pa.int32(), "steps kept in the start state")
    index: int = col(pa.int32(), "index among the rollouts of its start state")
    completion: str = col(pa.string(), "the sampled continuation")
    final_answer: str | None = col(pa.string(), "answer extracted from prefix + completion", default=None)
    outcome: float | None = col(pa.float64(), "verdict on prefix + completion", default=None)
    outcome_status: str | None = col(pa.string(), "ok | no_answer | ...", default=None)
    clean_outcome: float | None = col(
        pa.float64(), "the verdict before outcome.noise's channel; null without a channel", default=None
    )
    generated_tokens: int | None = col(pa.int32(), "tokens in the completion", default=None)
    finish_reason: str | None = col(pa.string(), "stop | length", default=None)
    seed: int | None = col(pa.int64(), "sampler seed of the request", default=None)


START_STATE_SCHEMA = arrow_schema(StartState, "start_states")
ROLLOUT_SCHEMA = arrow_schema(Rollout, "rollouts")
