"""Math-Shepherd's released layout (peiyi9979/Math-Shepherd on the hub: ``input``, ``label``, ``task``).

``input`` is the problem and its step-by-step solution with the step tag `` ки`` after every step;
``label`` is the same text with each tag's ``ки`` replaced by ``+`` (the step can still reach the right
answer) or ``-``; ``task`` names the data set (GSM8K or MATH there, the run's ``source`` here). Hard
labels only: the released data holds no soft values. TRL's conversion script
(``examples/datasets/math_shepherd.py``) recovers the steps by the tag positions, which is why a step
must never contain the tag (see :mod:`prmflow.export.formats.tagged`).
"""

from __future__ import annotations

import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.formats.tagged import tagged_input
from prmflow.export.select import Example


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    return [
        Column("input", pa.string(),
               f"the prompt, a newline, then the steps one per line, each followed by the step tag {config.placeholder!r}"),
        Column("label", pa.string(),
               f"input with each step tag's {config.marker!r} replaced by + (good) or - (bad): the {config.label} label"),
        Column("task", pa.string(), "the input's name in the run (the source column)"),
        *IDS,
    ]


def row(example: Example, config: ExportConfig) -> dict:
    tags = [config.placeholder.replace(config.marker, "+" if v == 1.0 else "-") for v in example.labels]
    return {
        "input": tagged_input(example.prompt, example.steps, config.placeholder),
        "label": tagged_input(example.prompt, example.steps, config.placeholder, tags),
        "task": example.source,
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
    }


def how_to_train(config: ExportConfig) -> str:
    return ("Same columns as peiyi9979/Math-Shepherd: any loader of that data set reads it (e.g. TRL's "
            "`examples/datasets/math_shepherd.py` conversion, or OpenRLHF with `--input_key input`).\n")
