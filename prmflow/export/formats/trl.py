"""TRL's stepwise-supervision layout, as ``trl.experimental.prm.PRMTrainer`` (trl 1.13.0, the last release
with it: huggingface/trl pull request 7133 removed it in 1.14) reads it.

Read from huggingface/trl at v1.13.0, ``trl/experimental/prm/prm_trainer.py``: ``tokenize_row`` tokenizes
``prompt`` and each of ``completions`` (a list of step strings) without special tokens, appends
``PRMConfig.step_separator`` (default ``"\\n"``) to every step, and puts ``int(label)`` of ``labels`` (one per
step) on the last token of each step's separator, -100 elsewhere. ``int()`` is why labels here are bools
only: a soft 0.67 would become 0 (``ExportConfig`` refuses ``--label soft``), and the trainer has no per-step
weights. Steps are exported as written; the separator is the trainer's to add.
"""

from __future__ import annotations

import pyarrow as pa

from prmflow.export.config import ExportConfig
from prmflow.export.formats.base import IDS, Column
from prmflow.export.select import Example


def columns(config: ExportConfig, examples: list[Example]) -> list[Column]:
    return [
        Column("prompt", pa.string(), "the problem text (the run's problems.prompt)"),
        Column("completions", pa.list_(pa.string()), "the solution's steps, in order, without separators"),
        Column("labels", pa.list_(pa.bool_()), f"one per step: the step's {config.label} label, true = good step"),
        *IDS,
    ]


def row(example: Example, config: ExportConfig) -> dict:
    return {
        "prompt": example.prompt,
        "completions": list(example.steps),
        "labels": [v == 1.0 for v in example.labels],
        "problem_id": example.problem_id,
        "trajectory_id": example.trajectory_id,
    }


def how_to_train(config: ExportConfig) -> str:
    return (
        "```python\n"
        "from datasets import Dataset\n"
        "from transformers import AutoModelForTokenClassification, AutoTokenizer\n"
        "from trl.experimental.prm import PRMConfig, PRMTrainer   # trl==1.13.0\n\n"
        "model = AutoModelForTokenClassification.from_pretrained(MODEL, num_labels=2)\n"
        "trainer = PRMTrainer(model=model, args=PRMConfig(output_dir=\"prm\", step_separator=\"\\n\"),\n"
        "                     processing_class=AutoTokenizer.from_pretrained(MODEL),\n"
        f"                     train_dataset=Dataset.from_{_loader(config)}(\"train.{_ext(config)}\"))\n"
        "trainer.train()\n"
        "```\n"
    )


def _loader(config: ExportConfig) -> str:
    return "parquet" if config.file_format == "parquet" else "json"


def _ext(config: ExportConfig) -> str:
    return config.file_format
