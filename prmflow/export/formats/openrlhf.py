"""OpenRLHF's process-reward layout, as OpenRLHF 0.9.5 reads it (``openrlhf/datasets/process_reward_dataset.py``;
0.9.5 is the last release with ``openrlhf.cli.train_prm``, removed in 0.10).

``ProcessRewardDataset`` reads ``--input_key`` (one string) and ``--label_key`` (a list), tokenizes the
input without special tokens, finds the positions equal to the id of ``--placeholder_token`` (encoded on
its own, which must give one token) and writes the labels there in order. A label list of strings is
mapped to token ids (each must be one of ``--reward_tokens``): hard labels, trained by ``PRMLoss`` as a
choice between the reward tokens. Float labels are refused (see ``config.SOFT_REFUSAL``).

The leading-space trap: the input holds the placeholder after a space (``"... step ки"``), and a BPE
tokenizer may have ``ки`` and ``Ġки`` as two different single tokens; OpenRLHF then finds no placeholder
and trains on nothing (``PRMLoss`` = nan, no error). ``--tokenizer DIR`` settles which text, with or
without the space, is the one token found once per label in every input, and the card's command passes
exactly that (:mod:`prmflow.export.tokens`); without it the card says it was not checked.
"""

from __future__ import annotations

import shlex

import pyarrow as pa

from prmflow.export.config import OPENRLHF_VERSION, ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.formats.tagged import tagged_input
from prmflow.export.select import Example

REWARD_TOKENS = ("+", "-")
"""The good and bad reward tokens, in OpenRLHF's order (the first is the positive one)."""


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    return [
        Column("input", pa.string(),
               f"the prompt, a newline, then the steps one per line, each followed by the placeholder {config.placeholder!r}"),
        Column("label", pa.list_(pa.string()), f"one reward token per step, the {config.label} label: + good, - bad"),
        *IDS,
    ]


def row(example: Example, config: ExportConfig) -> dict:
    return {
        "input": tagged_input(example.prompt, example.steps, config.placeholder),
        "label": [REWARD_TOKENS[0] if v == 1.0 else REWARD_TOKENS[1] for v in example.labels],
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
    }


def how_to_train(config: ExportConfig, placeholder_token: str | None = None) -> str:
    token = placeholder_token if placeholder_token is not None else config.marker
    checked = (f"The placeholder token {token!r} was checked against the tokenizer given to `--tokenizer`: one token, "
               f"found exactly once per label in every input; `+` and `-` are one token each.\n"
               if placeholder_token is not None else
               f"Not checked against a tokenizer (export with `--tokenizer DIR` to check it): {token!r} and the "
               f"reward tokens must each be one token of the model's tokenizer, and every input must tokenize to "
               f"one {token!r} per label (a BPE tokenizer may make `{config.placeholder}` a different token than "
               f"`{token}`).\n")
    return (
        "```bash\n"
        f"pip install openrlhf=={OPENRLHF_VERSION}   # openrlhf.cli.train_prm was removed in 0.10\n"
        "deepspeed --module openrlhf.cli.train_prm --pretrain MODEL \\\n"
        f"  --dataset ./train.{config.file_format} --input_key input --label_key label \\\n"
        f"  --placeholder_token {shlex.quote(token)} --reward_tokens + -\n"
        "```\n" + checked
    )
