"""A tiny training run on CPU: the loss falls on a learnable toy set, and the saved PRM scores as it
was validated (save/load round trip)."""

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
        "output": str(d / "prm"), "epochs": 4, "batch_size": 8, "lr": 3e-3, "max_length": 64, "device": "cpu",
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
    assert meta["step_format"]["separator"] == "\n" and meta["head"] == "single-logit"
    assert len(meta["weights_sha256"]) == 64 and (config_dir / "model" / "config.json").is_file()
    scorer = PRMScorer(result.output, device="cpu", batch_size=3)
    rows = toy_rows(16, 1)
    scores = scorer.score_many([(r["prompt"], r["steps"]) for r in rows])
    assert [len(s) for s in scores] == [len(r["steps"]) for r in rows]
    # alone or padded in a batch of 3: the same scores, up to float rounding
    assert scores[0] == pytest.approx(scorer.score(rows[0]["prompt"], rows[0]["steps"]), abs=1e-5)
    again = step_metrics([(s, r["labels"]) for s, r in zip(scores, rows, strict=True)]).to_dict()
    saved = meta["history"][-1]["validation"]
    for key in ("step_accuracy", "processbench_f1", "acc_erroneous", "acc_correct", "steps_scored"):
        assert again[key] == saved[key], key


def test_an_existing_output_is_refused_without_overwrite(trained):
    from prmflow.prm.train import train

    config, _ = trained
    with pytest.raises(FileExistsError, match="overwrite"):
        train(config, progress=False)
