"""Our ``trl`` export through TRL's own PRMTrainer (trl 1.13.0, the ``train`` extra): it tokenizes the rows
with one label per step on the step separator, and one optimisation step runs on the shipped model
loaded for token classification, on CPU."""

from __future__ import annotations

import math
import os

import pytest
import torch
from datasets import Dataset
from helpers import do_export, rows
from transformers import AutoModelForTokenClassification, AutoTokenizer

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we pin the release whose experimental API we test
from trl.experimental.prm import PRMConfig, PRMTrainer  # noqa: E402

from prmflow.models import resolve_model_path

MODEL = resolve_model_path("builtin:arith-tiny")


@pytest.fixture(scope="module")
def trl_export(mc_run, tmp_path_factory):
    return do_export(mc_run, tmp_path_factory.mktemp("trl") / "x", format="trl", val_fraction=0.3)


def test_prm_trainer_tokenizes_one_label_per_step_on_the_separator(trl_export):
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    separator = tokenizer.encode("\n", add_special_tokens=False)
    for row in rows(trl_export, "train") + rows(trl_export, "validation"):
        out = PRMTrainer.tokenize_row(row, tokenizer, "\n", max_length=None, max_completion_length=None,
                                      train_on_last_step_only=False, is_eval=False)
        labeled = [i for i, v in enumerate(out["labels"]) if v != -100]
        assert [out["labels"][i] for i in labeled] == [int(v) for v in row["labels"]]
        assert len(labeled) == len(row["completions"])
        assert all(out["input_ids"][i] == separator[-1] for i in labeled)


def test_prm_trainer_runs_one_optimisation_step(trl_export, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForTokenClassification.from_pretrained(MODEL, num_labels=2)
    train = Dataset.from_parquet(str(trl_export / "train.parquet"), cache_dir=str(tmp_path / "cache"))
    validation = Dataset.from_parquet(str(trl_export / "validation.parquet"), cache_dir=str(tmp_path / "cache"))
    assert len(train) > 0 and len(validation) > 0
    args = PRMConfig(
        output_dir=str(tmp_path / "prm"), max_steps=1, per_device_train_batch_size=8, learning_rate=1e-3,
        use_cpu=True, bf16=False, gradient_checkpointing=False, report_to=[], save_strategy="no",
        logging_steps=1, max_length=256, dataloader_num_workers=0, disable_tqdm=True, step_separator="\n",
    )
    trainer = PRMTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=train,
                         eval_dataset=validation)
    # the trainer's own tokenization of our rows: one labeled position per step
    steps = sum(len(r["completions"]) for r in rows(trl_export, "train"))
    assert sum(sum(1 for v in r if v != -100) for r in trainer.train_dataset["labels"]) == steps
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert "score.weight" in changed and len(changed) > 1  # the head and the body both moved
