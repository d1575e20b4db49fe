"""StepLabel: the row of a step shard, what a PRM trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from prmflow.schemas.base import arrow_schema, col, fast_init
from prmflow.schemas.version import SCHEMA_VERSION


@fast_init
@dataclass(frozen=True)
class StepLabel:
    step_id: str = col(pa.string(), "content hash of (trajectory_id, step_index)")
    trajectory_id: str = col(pa.string(), "the Trajectory this step belongs to")
    problem_id: str = col(pa.string(), "the Problem")
    source: str = col(pa.string(), "the input's name in the config")
    domain: str = col(pa.string(), "math | arith | code | general")
    step_index: int = col(pa.int32(), "0-based position in the trajectory")
    num_steps: int = col(pa.int32(), "steps in the trajectory")
    step_text: str = col(pa.string(), "the step's text")
    segment: str = col(pa.string(), "thinking | response")
    is_last: bool = col(pa.bool_(), "true for the trajectory's last step")
    outcome: float | None = col(pa.float64(), "the trajectory's outcome (our verdict)", default=None)
    gold_outcome: float | None = col(pa.float64(), "imported trajectory truth, null = unknown", default=None)
    gold_first_error: int | None = col(pa.int32(), "imported first wrong step of the trajectory", default=None)
    gold_label: float | None = col(pa.float64(), "imported truth for this step, null = unknown", default=None)
    mc_value: float | None = col(pa.float64(), "Monte-Carlo value: successes / rollouts from this prefix", default=None)
    mc_successes: int | None = col(pa.int32(), "rollouts from this prefix that reached a right outcome", default=None)
    mc_rollouts: int | None = col(pa.int32(), "rollouts sampled from this prefix", default=None)
    hard_label: float | None = col(pa.float64(), "1.0 / 0.0 hard pseudo-label (Math-Shepherd HE)", default=None)
    soft_label: float | None = col(pa.float64(), "soft pseudo-label in [0, 1] (Math-Shepherd SE)", default=None)
    relative_label: float | None = col(pa.float64(), "label from consecutive MC values", default=None)
    judge_score: float | None = col(pa.float64(), "an LLM judge's score for this step", default=None)
    prm_score: float | None = col(
        pa.float64(), "an external PRM's score for this step, imported (e.g. the last self-training round)", default=None
    )
    first_error: bool | None = col(pa.bool_(), "this step is the labeling method's first error", default=None)
    consensus: bool | None = col(
        pa.bool_(), "its trajectory's judge and Monte-Carlo first errors agree (Qwen Lessons §3.1.3)", default=None
    )
    label: float | None = col(pa.float64(), "the method's primary pseudo-label", default=None)
    weight: float | None = col(pa.float64(), "consistency weight (MetaStone-S1)", default=None)
    method: str | None = col(pa.string(), "labeling method: outcome | mc | binary-search | relative | ...", default=None)
    rollout_tokens: int | None = col(pa.int64(), "tokens generated in rollouts for this step", default=None)
    provenance: dict | None = col(pa.string(), "config digest and labeler settings, JSON", default=None, json_encoded=True)
    schema_version: int = col(pa.int32(), "SCHEMA_VERSION of the writer", default=SCHEMA_VERSION)


STEP_LABEL_SCHEMA = arrow_schema(StepLabel, "steps")
