"""The PRM reward on the demo's kind of PRM: arith-tiny samples (vLLM) labelled by the domain's exact
truth, exported, trained with `prmflow train-prm` (default head), then used as a reward. On held-out
problems, the right solution gets the higher reward than the same solution with one slipped result."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prmflow.cli import main
from prmflow.domains.arith.problems import generate_problems
from prmflow.rewards.prm import Item, PRMReward

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def arith_prm(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("arith-prm")
    (d / "run.yaml").write_text(yaml.safe_dump({
        "name": "arith-prm", "seed": 0,
        "inputs": [{"name": "arith", "format": "arith", "count": 60, "seed": 21, "import_solutions": False}],
        "sampler": {"backend": "vllm", "model": "builtin:arith-tiny", "dtype": "float32", "max_model_len": 256,
                    "kv_cache_memory_bytes": 268435456, "block_size": 32, "enforce_eager": True},
        "sampling": {"n": 4, "temperature": 1.0, "max_tokens": 96, "template": "arith", "batch_size": 240},
        "outcome": {"labeler": "math", "options": {"timeout_s": 5}},
    }))
    assert main(["run", str(d / "run.yaml"), "--output", str(d / "run")]) == 0
    assert main(["export", str(d / "run"), "--format", "prmflow", "--label", "gold", "--out", str(d / "export"),
                 "--val-fraction", "0.2"]) == 0
    (d / "prm.yaml").write_text(yaml.safe_dump({
        "data": str(d / "export"), "output": str(d / "prm"), "base_model": "builtin:arith-tiny",
        "epochs": 2, "batch_size": 16, "max_length": 256, "device": "cpu", "seed": 0,
    }))
    assert main(["train-prm", str(d / "prm.yaml")]) == 0
    return d / "prm"


def slipped(problem, step: int) -> str:
    """The reference solution with one result off by 3 (the later steps as written)."""
    lines = list(problem.steps)
    head, _, value = lines[step].rpartition(" = ")
    lines[step] = f"{head} = {int(value) + 3}"
    return "\n".join(lines)


def test_right_solutions_get_the_higher_reward_on_held_out_problems(arith_prm):
    held_out = generate_problems(12, seed=987)
    reward = PRMReward(str(arith_prm), aggregation="min", device="cpu")
    items = []
    for i, p in enumerate(held_out):
        items += [Item(p.prompt, p.demonstration), Item(p.prompt, slipped(p, i % p.num_ops))]
    for how in ("min", "mean"):
        rewards = reward.rewards(items, how)
        pairs = [(rewards[2 * i], rewards[2 * i + 1]) for i in range(len(held_out))]
        wins = sum(right > wrong for right, wrong in pairs)
        assert wins >= len(pairs) - 1, (how, pairs)
