"""Tiny training runs on CPU: every head learns a learnable toy set, the saved PRM scores as it was
validated (save/load round trip), a killed run resumes to the same weights and metrics, and PRMs saved
before the heads still score."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from prmflow.prm.config import PRM_JSON, parse_train_config
from prmflow.prm.metrics import step_metrics


def toy_rows(n: int, seed: int) -> list[dict]:
    """A step is good iff it says "yes": learnable from one token, whatever the prompt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.randint(1, 4)
        labels = [float(rng.random() < 0.6) for _ in range(k)]
        steps = [f"{rng.randint(1, 9)} {'yes' if y else 'no'}" for y in labels]
        rows.append({"problem_id": f"p{seed}-{i}", "prompt": f"Q {i}", "steps": steps, "labels": labels,
                     "weights": [1.0] * k})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from prmflow.prm.train import train

    d = tmp_path_factory.mktemp("toy")
    config = parse_train_config({
        "data": write_jsonl(d / "train.jsonl", toy_rows(48, 0)),
        "validation": write_jsonl(d / "val.jsonl", toy_rows(16, 1)),
        "output": str(d / "prm"), "epochs": 4, "batch_size": 8, "lr": 1e-3, "head_lr": 1e-2, "max_length": 64,
        "device": "cpu",
    })
    return config, train(config, progress=False)


def test_training_lowers_the_validation_loss_and_separates_the_classes(trained):
    _, result = trained
    first, last = result.history[0]["validation"], result.history[-1]["validation"]
    assert last["loss"] < 0.35 < 0.69  # an untrained head sits at ln 2
    assert last["loss"] < first["loss"]
    assert last["step_accuracy"] == 1.0 and last["processbench_f1"] == 1.0
    assert result.steps == 4 * 6  # 48 rows in batches of 8, 4 epochs
    assert 0 < result.step_seconds < result.seconds  # the optimiser steps alone, without load/validation/save


def test_the_saved_prm_scores_as_it_was_validated(trained):
    from prmflow.prm.scorer import PRMScorer

    _, result = trained
    config_dir = Path(result.output)
    meta = json.loads((config_dir / PRM_JSON).read_text())
    assert meta["step_format"]["separator"] == "\n" and meta["head"] == "logprob"
    assert meta["head_config"]["features"] == ["min_logprob", "mean_logprob", "last_logprob", "min_prob"]
    assert (config_dir / "model" / "head.safetensors").is_file()
    assert len(meta["weights_sha256"]) == 64 and (config_dir / "model" / "config.json").is_file()
    scorer = PRMScorer(result.output, device="cpu", batch_size=3)
    rows = toy_rows(16, 1)
    scores = scorer.score_many([(r["prompt"], r["steps"]) for r in rows])
    assert [len(s) for s in scores] == [len(r["steps"]) for r in rows]
    # alone or padded in a batch of 3: the same scores, up to float rounding
    assert scores[0] == pytest.approx(scorer.score(rows[0]["prompt"], rows[0]["steps"]), abs=1e-5)
    again = step_metrics([(s, r["labels"]) for s, r in zip(scores, rows, strict=True)], meta["threshold"]).to_dict()
    saved = meta["validation"]
    for key in ("step_accuracy", "processbench_f1", "acc_erroneous", "acc_correct", "steps_scored", "step_auc"):
        assert again[key] == saved[key], key
    assert scorer.threshold == meta["threshold"] and scorer.head == "logprob"


def test_an_existing_output_is_refused_without_overwrite(trained):
    from prmflow.prm.train import train

    config, _ = trained
    with pytest.raises(FileExistsError, match="overwrite"):
        train(config, progress=False)


def toy_config(d: Path, **change):
    d.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(d / "train.jsonl", toy_rows(48, 0))
    val = write_jsonl(d / "val.jsonl", toy_rows(16, 1))
    return parse_train_config({"data": data, "validation": val, "output": str(d / "prm"), "epochs": 3,
                               "batch_size": 8, "lr": 1e-3, "head_lr": 1e-2, "max_length": 64, "device": "cpu",
                               **change})


@pytest.mark.parametrize("head", ["value", "reward-token"])
def test_every_head_learns_the_toy_set(tmp_path, head):
    from prmflow.prm.scorer import PRMScorer
    from prmflow.prm.train import train

    result = train(toy_config(tmp_path, head=head, epochs=4), progress=False)
    assert result.history[0]["validation"]["loss"] > result.validation["loss"]
    assert result.validation["step_auc"] == 1.0 and result.validation["processbench_f1"] == 1.0
    scorer = PRMScorer(result.output, device="cpu")
    good, bad = scorer.score("Q 1", ["3 yes", "4 no"])
    assert scorer.head == head and good > scorer.threshold >= bad


def test_the_logprob_head_starts_as_the_likelihood_scorer_at_the_base_rate(tmp_path):
    """Before any step: bias logit(base rate), every weight 0 but the lowest token log-prob's, 1. So a
    step's logit is logit(base rate) + its lowest token log-prob, which the likelihood scorer (a separate
    implementation) reports as exp(min log-prob); a 1/3 base rate is not the 0.5 a zero bias would give."""
    import math

    import torch

    from prmflow.models import resolve_model_path
    from prmflow.prm.baselines import LikelihoodScorer
    from prmflow.prm.encoding import StepFormat, encode_many
    from prmflow.prm.model import PRMModel, collate, load_causal_lm, load_tokenizer, step_logits

    base = resolve_model_path("builtin:arith-tiny")
    model = PRMModel(load_causal_lm(base), "logprob")
    model.set_base_rate(1 / 3)
    tok = load_tokenizer(base)
    examples = [("Q 1", ["3 yes", "4 no"]), ("Q 2", ["1 no"])]
    batch, _ = collate(encode_many(tok, StepFormat(), examples, 64), tok.pad_token_id, "cpu")
    with torch.no_grad():
        logits = step_logits(model, batch, None).tolist()
    likely = [p for row in LikelihoodScorer("builtin:arith-tiny", device="cpu").score_many(examples) for p in row]
    assert model.score.bias.item() == pytest.approx(math.log(0.5))
    # (log-probs clamped at -20: the toy text is nothing this arith model would write)
    assert logits == pytest.approx([math.log(0.5) + max(math.log(p), -20.0) for p in likely], abs=1e-4)
    assert min(likely) < 0.5  # the prior moves these steps well away from the base rate


def test_training_standardises_the_logprob_features(trained):
    """The saved head holds the features' mean and std over the training steps, not the 0 / 1 defaults."""
    from safetensors.torch import load_file

    _, result = trained
    head = load_file(str(Path(result.output) / "model" / "head.safetensors"))
    assert head["feat_mean"][0] < 0 and (head["feat_std"] > 0).all() and (head["feat_std"] != 1).all()


class _Crash(Exception):
    pass


def _crash_after(step: int):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= step:
                raise _Crash(f"stopped after checkpoint {state.global_step}")

    return Crash()


def test_a_run_stopped_after_a_checkpoint_resumes_to_the_same_weights_and_metrics(tmp_path):
    """Stopped right after its step-4 checkpoint (mid-epoch: 6 steps an epoch), then started again with
    the same config: it resumes there and ends exactly where an uninterrupted run ends."""
    from prmflow.prm.train import train

    whole = train(toy_config(tmp_path / "a", eval_steps=2), progress=False)
    config = toy_config(tmp_path / "b", eval_steps=2)
    with pytest.raises(_Crash):
        train(config, progress=False, callbacks=[_crash_after(4)])
    assert not Path(config.output).exists() and (Path(config.checkpoints) / "checkpoint-4").is_dir()
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            Count.steps += 1

    resumed = train(config, progress=False, callbacks=[Count()])
    assert resumed.resumed_from.endswith("checkpoint-4")
    assert Count.steps == whole.steps - 4 == 3 * 6 - 4  # it went on from step 4, it did not start over
    a = json.loads((Path(whole.output) / PRM_JSON).read_text())
    b = json.loads((Path(resumed.output) / PRM_JSON).read_text())
    assert a["weights_sha256"] == b["weights_sha256"]
    assert a["validation"] == b["validation"] and a["threshold"] == b["threshold"]
    assert [h["validation"] for h in a["history"]] == [h["validation"] for h in b["history"]]
    assert not Path(config.checkpoints).exists()  # removed once the PRM is published


def test_a_killed_train_prm_resumes_from_its_last_checkpoint(tmp_path):
    """The real thing: `prmflow train-prm` killed with SIGKILL once a checkpoint is complete (wherever it
    is by then), started again, ends with the uninterrupted run's weights and metrics."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from prmflow.prm.train import last_checkpoint, train

    change = {"eval_steps": 3, "epochs": 12}
    whole = train(toy_config(tmp_path / "a", **change), progress=False)
    config = toy_config(tmp_path / "b", **change)
    path = tmp_path / "b" / "c.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in {
        "data": config.data, "validation": config.validation, "output": config.output, "epochs": 12,
        "batch_size": 8, "lr": 1e-3, "head_lr": 1e-2, "max_length": 64, "device": "cpu", "eval_steps": 3}.items()}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "prmflow", "train-prm", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = Path(config.checkpoints)
    while proc.poll() is None and (not ckpt.is_dir() or last_checkpoint(ckpt) is None):
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # 72 steps: still far from done
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = last_checkpoint(ckpt)
    assert killed_at is not None and not Path(config.output).exists()
    resumed = subprocess.run([sys.executable, "-m", "prmflow", "train-prm", str(path)], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    a = json.loads((Path(whole.output) / PRM_JSON).read_text())
    b = json.loads((Path(config.output) / PRM_JSON).read_text())
    assert a["weights_sha256"] == b["weights_sha256"] and a["validation"] == b["validation"]


def test_checkpoints_of_another_config_are_refused(tmp_path):
    from prmflow.core.section import ConfigError
    from prmflow.prm.train import train

    config = toy_config(tmp_path, eval_steps=2)
    with pytest.raises(_Crash):
        train(config, progress=False, callbacks=[_crash_after(2)])
    with pytest.raises(ConfigError, match=r"^train_prm.checkpoint_dir .* holds checkpoints of another config"):
        train(toy_config(tmp_path, eval_steps=2, lr=2e-3), progress=False)


def test_a_prm_saved_before_the_heads_still_scores(tmp_path):
    """prm.json head "single-logit" (a one-label token classifier, the first train-prm's format): the
    scorer loads it and reads the classifier's logit at each step's last token."""
    import torch
    from transformers import AutoModelForTokenClassification

    from prmflow.models import resolve_model_path
    from prmflow.prm.encoding import StepFormat, encode_many
    from prmflow.prm.model import load_tokenizer
    from prmflow.prm.scorer import PRMScorer

    base = resolve_model_path("builtin:arith-tiny")
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=1)
    tok = load_tokenizer(base)
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    (tmp_path / PRM_JSON).write_text(json.dumps({
        "format": "prmflow-prm", "format_version": 1, "head": "single-logit", "max_length": 64,
        "step_format": StepFormat().to_json()}))
    scorer = PRMScorer(str(tmp_path), device="cpu")
    enc = encode_many(tok, StepFormat(), [("Q 1", ["3 yes", "4 no"])], 64)[0]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0, :, 0]
    expected = torch.sigmoid(logits[enc.positions]).tolist()
    assert scorer.score("Q 1", ["3 yes", "4 no"]) == pytest.approx(expected, abs=1e-5)
    assert scorer.threshold == 0.5


def test_gradient_accumulation_takes_the_same_optimiser_steps(tmp_path):
    """batch 8 as 2 micro-batches of 4: still 6 optimiser steps an epoch, and it learns the toy set."""
    from prmflow.prm.train import train

    result = train(toy_config(tmp_path, micro_batch_size=4, epochs=2), progress=False)
    assert result.steps == 2 * 6
    assert result.validation["step_auc"] == 1.0


def test_bf16_trains_and_saves_float32_weights(tmp_path):
    """dtype bfloat16: Trainer's bf16 mixed precision (on CPU here); the saved PRM scores like any other."""
    from prmflow.prm.scorer import PRMScorer
    from prmflow.prm.train import train

    result = train(toy_config(tmp_path, dtype="bfloat16", epochs=2), progress=False)
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(Path(result.output) / "model" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}  # bf16 autocast, float32 master weights
    scorer = PRMScorer(result.output, device="cpu")
    good, bad = scorer.score("Q 1", ["3 yes", "4 no"])
    assert good > bad
