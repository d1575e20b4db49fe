"""A tiny PRM trained the way a user trains one: `prmflow run` imports hand-checked arithmetic solutions
with gold step labels, `prmflow export --format prmflow` writes them (first-error convention), and
`prmflow train-prm` fine-tunes the shipped arith-tiny policy on them, on CPU."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from prmflow.cli import main


def problems(n: int, seed: int) -> list[dict]:
    """tests/prm's learnable toy set, through the real pipeline: a step is good iff it says "yes" (a 1.1M
    model learns that in a few CPU epochs; these tests check the reward's plumbing, not a PRM's skill).
    Each problem has a right solution and one that goes wrong at a random step."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.randint(2, 4)
        wrong_at = rng.randrange(k)
        for first_error in (None, wrong_at):
            gold = [1 if first_error is None or j < first_error else 0 for j in range(k)]
            steps = [f"{rng.randint(1, 9)} {'yes' if g else 'no'}" for g in gold]
            rows.append({"q": f"Q {i}", "a": "yes", "steps": steps, "gold": gold})
    return rows


@pytest.fixture(scope="session")
def tiny_prm(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("reward-prm")
    (d / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in problems(40, 0)))
    (d / "run.yaml").write_text(yaml.safe_dump({
        "name": "reward-prm", "segment": {"strategy": "given"}, "outcome": {"labeler": "exact"},
        "inputs": [{"name": "sums", "format": "jsonl", "path": str(d / "p.jsonl"), "import_solutions": True,
                    "fields": {"prompt": "q", "reference_answer": "a", "steps": "steps", "gold_step_labels": "gold"}}],
    }))
    assert main(["run", str(d / "run.yaml"), "--output", str(d / "run")]) == 0
    assert main(["export", str(d / "run"), "--format", "prmflow", "--label", "gold", "--out", str(d / "export"),
                 "--val-fraction", "0.1"]) == 0
    (d / "prm.yaml").write_text(yaml.safe_dump({
        "data": str(d / "export"), "output": str(d / "prm"), "base_model": "builtin:arith-tiny",
        "epochs": 4, "lr": 3e-3, "batch_size": 8, "max_length": 64,
        "device": "cpu", "seed": 0,
    }))
    assert main(["train-prm", str(d / "prm.yaml")]) == 0
    return d / "prm"
