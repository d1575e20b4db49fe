"""Our openrlhf export through OpenRLHF 0.9.5's own ProcessRewardDataset and PRMLoss: every label lands on
a placeholder position (hard labels, aligned), the loss is finite, and --tokenizer refuses a placeholder
that the tokenizer would not find (the leading-space trap), naming the fix."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from consumers import openrlhf
from helpers import all_rows, card, do_export
from transformers import AutoModelForCausalLM, AutoTokenizer

from prmflow.cli import main
from prmflow.models import resolve_model_path

ARITH = resolve_model_path("builtin:arith-tiny")


def strategy(token: str) -> SimpleNamespace:
    """What ProcessRewardDataset reads from its strategy: the CLI's arguments, as the card's command sets them."""
    return SimpleNamespace(args=SimpleNamespace(input_key="input", label_key="label", placeholder_token=token,
                                                reward_tokens=["+", "-"]))


def check_in_openrlhf(out, tokenizer_dir, model=None):
    ProcessRewardDataset, PRMLoss = openrlhf()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    token = card(out)["openrlhf"]["placeholder_token"]
    rows = all_rows(out)
    data = {"input": [r["input"] for r in rows], "label": [r["label"] for r in rows]}
    dataset = ProcessRewardDataset(data, tokenizer, max_length=4096, strategy=strategy(token))
    placeholder = dataset.placeholder_token_id
    plus, minus = (tokenizer.encode(t, add_special_tokens=False)[0] for t in ("+", "-"))
    for i, row in enumerate(rows):
        input_ids, _, labels = dataset[i]
        at = labels[0] != -100
        assert at.sum().item() == len(row["label"])  # every label placed, none lost
        assert torch.equal(at, input_ids[0] == placeholder)  # exactly on the placeholders
        assert labels[0][at].tolist() == [plus if v == "+" else minus for v in row["label"]]
    if model is not None:
        input_ids, mask, labels = dataset.collate_fn([dataset[i] for i in range(min(8, len(rows)))])
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        loss = PRMLoss(placeholder, [plus, minus])(input_ids, logits, labels)
        assert math.isfinite(loss.item()) and loss.item() > 0
        loss.backward()


def test_hard_labels_land_on_the_placeholders_and_train(mc_run, tmp_path):
    out = do_export(mc_run, tmp_path / "x", format="openrlhf", placeholder=" @", tokenizer=str(ARITH))
    # arith-tiny has "@" but not " @" as one token: the card's command passes the bare one
    assert card(out)["openrlhf"] == {"version": "0.9.5", "placeholder_token": "@", "reward_tokens": ["+", "-"],
                                     "tokenizer_checked": True}
    assert "--placeholder_token @ --reward_tokens + -" in (out / "README.md").read_text(encoding="utf-8")
    check_in_openrlhf(out, ARITH, AutoModelForCausalLM.from_pretrained(ARITH))


def test_leading_space_placeholder_is_passed_with_its_space(mc_run, tmp_path, smollm2_dir):
    # SmolLM2 has " §" and "§" as two different single tokens; the input holds " §"
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert len({tok.encode(t, add_special_tokens=False)[0] for t in (" §", "§")}) == 2
    out = do_export(mc_run, tmp_path / "x", format="openrlhf", placeholder=" §", tokenizer=str(smollm2_dir))
    assert card(out)["openrlhf"]["placeholder_token"] == " §"
    assert "--placeholder_token ' §' --reward_tokens + -" in (out / "README.md").read_text(encoding="utf-8")
    check_in_openrlhf(out, smollm2_dir)


def test_the_default_placeholder_is_refused_where_the_tokenizer_splits_it(mc_run, tmp_path, smollm2_dir, capsys):
    # "ки" is two SmolLM2 tokens: OpenRLHF would stop on a bare AssertionError; the export says why, before writing
    assert main(["export", str(mc_run), "--format", "openrlhf", "--out", str(tmp_path / "x"),
                 "--tokenizer", str(smollm2_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "' ки' is 2 tokens; 'ки' is 2 tokens" in err and "pick a --placeholder" in err
    assert not (tmp_path / "x").exists()


def test_soft_labels_fail_in_openrlhf_itself(mc_run, tmp_path):
    """Why the export refuses them: 0.9.5 writes labels into a Long tensor (the test fails if OpenRLHF fixes it)."""
    ProcessRewardDataset, _ = openrlhf()
    out = do_export(mc_run, tmp_path / "x", format="openrlhf", placeholder=" @")
    row = all_rows(out)[0]
    data = {"input": [row["input"]], "label": [[0.5] * len(row["label"])]}
    dataset = ProcessRewardDataset(data, AutoTokenizer.from_pretrained(ARITH), max_length=4096, strategy=strategy("@"))
    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match"):
        dataset[0]
