"""The outcome reward (verl's custom reward function of `--format verl` rows): 1 right, 0 wrong, by each of
prmflow's rule labelers, the one the row names; a start state's continuation is judged after its prefix."""

from __future__ import annotations

import json

import pytest

from prmflow.rewards.outcome import compute_score

CASES = [
    # labeler, options, ground truth, right solution, wrong solution
    ("math", {"timeout_s": 5}, "\\frac{1}{2}", "So the result is \\boxed{0.5}.", "So the result is \\boxed{2}."),
    ("numeric", None, "1200", "The answer is 1,200.", "The answer is 1201."),
    ("exact", None, "Paris", "The answer is Paris.", "The answer is Lyon."),
    ("code", {"timeout_s": 20}, json.dumps({"test": "assert add(2, 3) == 5\n", "entry_point": "add"}),
     "```python\ndef add(a, b):\n    return a + b\n```", "```python\ndef add(a, b):\n    return a - b\n```"),
]


@pytest.mark.parametrize("labeler, options, truth, right, wrong", CASES, ids=[c[0] for c in CASES])
def test_right_is_1_and_wrong_is_0(labeler, options, truth, right, wrong):
    info = {"outcome_labeler": labeler, "outcome_options": json.dumps(options)}
    assert compute_score("src", right, truth, info) == 1.0
    assert compute_score("src", wrong, truth, info) == 0.0
    assert compute_score("src", "", truth, info) == 0.0  # no answer: no reward


def test_a_continuation_is_judged_after_its_prefix():
    info = {"outcome_labeler": "numeric", "outcome_options": "null", "continue_final_message": True,
            "prefix": "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14"}
    assert compute_score("src", "The answer is 14.", "14", info) == 1.0
    assert compute_score("src", "The answer is 15.", "14", info) == 0.0


def test_labeler_override_and_default():
    assert compute_score("src", "The answer is 7.", "7", None) == 1.0  # math by default
    assert compute_score("src", "The answer is seven", "seven", {"outcome_labeler": "math"}, labeler="exact") == 1.0
