"""prmflow's own weighted layout: prompt, steps, per-step float labels and consistency weights.

For a trainer that masks or weighs steps (MetaStone-S1's consistency weights) and keeps soft labels
(Math-Shepherd's SE). It re-imports through the generic input formats with
``fields: {prompt: prompt, steps: steps, gold_step_labels: labels}`` (or ``step_scores: labels``).
"""

from __future__ import annotations

import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.select import Example


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    return [
        *IDS,
        Column("source", pa.string(), "the input's name in the run"),
        Column("domain", pa.string(), "math | arith | code | general"),
        Column("prompt", pa.string(), "the problem text"),
        Column("steps", pa.list_(pa.string()), "the solution's steps, in order"),
        Column("labels", pa.list_(pa.float64()), f"one per step: the {config.label} label in [0, 1]"),
        Column("weights", pa.list_(pa.float64()),
               "one per step: the run's consistency weight (MetaStone-S1); null where the run computed none"),
        Column("label_kind", pa.string(), "which label column the labels are (the export's --label)"),
        Column("method", pa.string(), "the run's labeling method for this trajectory (mc, binary-search, ...)"),
        Column("outcome", pa.float64(), "the trajectory's outcome verdict in [0, 1]; null = not judged"),
    ]


def row(example: Example, config: ExportConfig) -> dict:
    return {
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
        "source": example.source,
        "domain": example.domain,
        "prompt": example.prompt,
        "steps": list(example.steps),
        "labels": list(example.labels),
        "weights": list(example.weights),
        "label_kind": config.label,
        "method": example.method,
        "outcome": example.outcome,
    }


def how_to_train(config: ExportConfig) -> str:
    return ("Read with `pyarrow.parquet.read_table` / `datasets.Dataset.from_parquet` (or JSONL); weigh each "
            "step's loss by `weights` (a step of weight 0 disagrees with its trajectory's outcome).\n")
