"""Math-Shepherd's released layout (peiyi9979/Math-Shepherd on the hub: ``input``, ``label``, ``task``).

``input`` is the problem, then the steps one per line, each written ``Step k: <step>`` as in the released
data, with the step tag `` ки`` after every step; ``label`` is the same text with each tag's ``ки``
replaced by ``+`` (the step can still reach the right answer) or ``-``; ``task`` names the data set (GSM8K
or MATH there, the run's ``source`` here). Hard labels only: the released data holds no soft values.

TRL's conversion script (``examples/datasets/math_shepherd.py``, ``process_example``) recovers the steps
by the tag positions and cuts the first step off the prompt at ``"Step 1:"``; without the prefixes it
falls back to the first ``"?"`` and fails on a problem without exactly one (ProcessBench gsm8k: 5 of 209
rows). So every step carries its ``Step k:`` prefix (a step that already starts with it keeps its own),
a trajectory whose problem text holds ``Step 1:`` is dropped (``step_prefix_in_text``), and a step must
never contain the tag (see :mod:`prmflow.export.formats.tagged`).
"""

from __future__ import annotations

import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.formats.tagged import prefixed, tagged_input
from prmflow.export.select import Example


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    return [
        Column("input", pa.string(),
               f"the prompt, a newline, then the steps one per line as 'Step k: <step>', each followed by the step "
               f"tag {config.placeholder!r}"),
        Column("label", pa.string(),
               f"input with each step tag's {config.marker!r} replaced by + (good) or - (bad): the {config.label} label"),
        Column("task", pa.string(), "the input's name in the run (the source column)"),
        *IDS,
    ]


def row(example: Example, config: ExportConfig) -> dict:
    steps = prefixed(example.steps)
    tags = [config.placeholder.replace(config.marker, "+" if v == 1.0 else "-") for v in example.labels]
    return {
        "input": tagged_input(example.prompt, steps, config.placeholder),
        "label": tagged_input(example.prompt, steps, config.placeholder, tags),
        "task": example.source,
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
    }


def how_to_train(config: ExportConfig) -> str:
    return ("Same columns and `Step k:` layout as peiyi9979/Math-Shepherd: a loader of that data set reads it, "
            "e.g. TRL's conversion to its stepwise format (`process_example` of `examples/datasets/math_shepherd.py` "
            "in huggingface/trl v1.13.0):\n\n"
            "```python\n"
            "from datasets import load_dataset\n"
            "from math_shepherd import process_example   # huggingface/trl examples/datasets/math_shepherd.py\n\n"
            "dataset = load_dataset(\".\", split=\"train\").map(process_example, remove_columns=[\"input\", \"label\", \"task\"])\n"
            "```\n"
            "For OpenRLHF use `--format openrlhf` (its labels are a list; this format's `label` is text).\n")
