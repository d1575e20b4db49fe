"""OpenRLHF's process-reward layout (``openrlhf/datasets/process_reward_dataset.py``, OpenRLHF/OpenRLHF).

``ProcessRewardDataset`` reads ``--input_key`` (one string) and ``--label_key`` (a list), tokenizes the
input without special tokens, finds the positions equal to ``--placeholder_token``'s id and writes the
labels there in order. A label list of strings is mapped to token ids (each must be one of
``--reward_tokens``): hard labels, trained as next-token classes. A list of floats is soft: ``PRMLoss``
trains cross-entropy against the two reward tokens with ``[p, 1 - p]`` targets, the first reward token
being the positive one. So: ``label`` is ``"+"`` / ``"-"`` for 0/1 labels and floats for ``--label soft``
(or any label with values other than 0 and 1, e.g. PRM800K's neutral 0.5 in ``gold``).

Train with ``--input_key input --label_key label --placeholder_token ки --reward_tokens + -``.
"""

from __future__ import annotations

import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.formats.tagged import tagged_input
from prmflow.export.select import Example, non_binary


def soft(config: ExportConfig, examples: list[Example]) -> bool:
    """Float labels: asked for (soft), or forced by a label that is neither 0 nor 1."""
    return config.label == "soft" or non_binary(examples)[0] > 0


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    if soft(config, examples):
        label = Column("label", pa.list_(pa.float64()),
                       f"one float per step, the {config.label} label: P(good step), the target of the first reward token")
    else:
        label = Column("label", pa.list_(pa.string()), f"one reward token per step, the {config.label} label: + good, - bad")
    return [
        Column("input", pa.string(),
               f"the prompt, a newline, then the steps one per line, each followed by the placeholder {config.placeholder!r}"),
        label,
        *IDS,
    ]


def row(example: Example, config: ExportConfig, *, as_floats: bool) -> dict:
    return {
        "input": tagged_input(example.prompt, example.steps, config.placeholder),
        "label": list(example.labels) if as_floats else ["+" if v == 1.0 else "-" for v in example.labels],
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
    }


def how_to_train(config: ExportConfig) -> str:
    return (
        "```bash\n"
        "deepspeed --module openrlhf.cli.train_prm --pretrain MODEL \\\n"
        f"  --dataset ./train.{config.file_format} --input_key input --label_key label \\\n"
        f"  --placeholder_token {config.marker} --reward_tokens + -\n"
        "```\n"
        f"The placeholder {config.marker!r} must be one token of the model's tokenizer (add it if needed).\n"
    )
