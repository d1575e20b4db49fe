"""The PRM reward on a trained prmflow PRM: the right of two responses gets the higher reward, through the
Python API, verl's calling convention (one response and a batch) and the HTTP endpoint."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from prmflow.rewards.prm import Item, PRMReward, aggregate, compute_score
from prmflow.rewards.server import RewardServer

QUESTION = "Q 1000"  # not among the training problems
RIGHT = "3 yes\n5 yes\n8 yes"
WRONG = "3 yes\n5 no\n8 no"


def test_question_is_held_out(tiny_prm):
    from tests.rewards.conftest import problems

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
