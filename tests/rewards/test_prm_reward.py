"""The PRM reward on a trained prmflow PRM: the right of two responses gets the higher reward, through the
Python API, verl's calling convention (one response and a batch) and the HTTP endpoint.

The PRM is trained the way a user trains one: `prmflow run` imports solutions with gold step labels,
`prmflow export --format prmflow` writes them (first-error convention), and `prmflow train-prm`
fine-tunes the shipped arith-tiny policy on them, on CPU."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from prmflow.cli import main
from prmflow.rewards.prm import Item, PRMReward, aggregate, compute_score
from prmflow.rewards.server import RewardServer


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


@pytest.fixture(scope="module")
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


QUESTION = "Q 1000"  # not among the training problems
RIGHT = "3 yes\n5 yes\n8 yes"
WRONG = "3 yes\n5 no\n8 no"


def test_question_is_held_out():
    assert QUESTION not in {r["q"] for r in problems(40, 0)}


def test_the_right_response_gets_the_higher_reward(tiny_prm):
    reward = PRMReward(str(tiny_prm), aggregation="min", device="cpu")
    items = [Item(QUESTION, RIGHT), Item(QUESTION, WRONG)]
    scores = reward.step_scores(items)
    assert [len(s) for s in scores] == [3, 3]  # segmented by lines, one score per step
    for how in ("min", "last", "mean"):
        right, wrong = reward.rewards(items, how)
        assert right > wrong, (how, scores)


def test_verl_calling_convention_one_and_batched(tiny_prm):
    info = {"question": QUESTION, "segment": json.dumps({"strategy": "given", "joiner": "\n"}),
            "outcome_labeler": "exact", "outcome_options": "null"}
    one = [compute_score("sums", s, "yes", info, prm=str(tiny_prm), device="cpu") for s in (RIGHT, WRONG)]
    batch = compute_score(prm=str(tiny_prm), device="cpu", data_sources=["sums"] * 2, solution_strs=[RIGHT, WRONG],
                          ground_truths=["yes", "yes"], extra_infos=[info, info])
    assert one == pytest.approx(batch) and one[0] > one[1]
    # the outcome by the exact labeler: the last line against the ground truth
    mixed = compute_score(prm=str(tiny_prm), device="cpu", outcome_weight=0.5, solution_strs=[RIGHT, WRONG],
                          ground_truths=["8 yes", "8 yes"], extra_infos=[info, info])
    assert mixed == pytest.approx([0.5 * one[0] + 0.5, 0.5 * one[1]])  # the outcome: right 1, wrong 0


def test_endpoint_answers_a_batched_request(tiny_prm):
    server = RewardServer(PRMReward(str(tiny_prm), device="cpu"), port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = {"items": [{"prompt": QUESTION, "response": RIGHT}, {"prompt": QUESTION, "response": WRONG},
                          {"prompt": QUESTION, "steps": ["3 yes", "5 yes", "8 yes"]}],
                "aggregation": "mean"}
        request = urllib.request.Request(f"{url}/score", json.dumps(body).encode(), {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        right, wrong, given = answer["rewards"]
        assert right > wrong and given == pytest.approx(right)
        assert answer["rewards"][0] == pytest.approx(aggregate(answer["step_scores"][0], "mean"))
        bad = urllib.request.Request(f"{url}/score", b'{"items": [{"prompt": 1}]}', {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=60)
        assert e.value.code == 400 and "items[0]" in json.loads(e.value.read())["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_aggregation_rules():
    assert aggregate([0.9, None, 0.2, 0.5], "min") == 0.2
    assert aggregate([0.9, None, 0.2, 0.5], "last") == 0.5
    assert aggregate([0.9, 0.2, None], "mean") == pytest.approx(0.55)
    assert aggregate([None], "min") == 0.0 and aggregate([], "mean") == 0.0
    with pytest.raises(ValueError, match="aggregation must be one of min, last, mean, got 'max'"):
        aggregate([0.5], "max")
