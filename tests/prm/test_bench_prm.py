"""bench/prm.py's evaluation code, checked with the answers known: the gold labels as scores give
ProcessBench F1 1.0, step AUC 1.0 and best-of-8 = any-of-8 (the bench's "oracle" row, as a test), on
solutions of the bench's perturbation sampler, whose injected errors the arith checker labels."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import prm as bench  # noqa: E402

from prmflow.domains.arith import check_steps, generate_problems  # noqa: E402


@pytest.fixture(scope="module")
def other():
    problems = generate_problems(40, bench.EVAL_SEED)
    policy = {f"p{i}": [{"prompt": p.prompt}] for i, p in enumerate(problems)}
    return bench.other_set(policy, 40, bench.EVAL_SEED)


def test_the_perturbation_sampler_injects_every_kind_and_the_checker_sees_each(other):
    sols = [s for group in other.values() for s in group]
    assert len(other) == 40 and all(len(g) == 8 for g in other.values())
    kinds = Counter(s["kind"] for s in sols)
    assert set(kinds) == {None, "operand", "operator", "slip"}
    assert all((s["gold_fe"] >= 0) == (s["kind"] is not None) for s in sols)  # an injected error is an error
    assert all(not s["right"] for s in sols if s["kind"] is not None)
    assert all(s["right"] for s in sols if s["kind"] is None)


def test_the_perturbation_sampler_is_seeded(other):
    problems = generate_problems(40, bench.EVAL_SEED)
    policy = {f"p{i}": [{"prompt": p.prompt}] for i, p in enumerate(problems)}
    assert bench.other_set(policy, 40, bench.EVAL_SEED) == other


def test_operand_and_operator_errors_keep_the_arithmetic_right():
    """What breaks the likelihood shortcut: the wrong step's own a op b = c holds."""
    from prmflow.domains.arith.checker import parse_line

    for i, problem in enumerate(generate_problems(30, 3)):
        rng = random.Random(i)
        for _ in range(8):
            steps, kind = bench.perturbed_solution(problem, rng)
            if kind in ("operand", "operator"):
                fe = check_steps(problem, steps).first_error_index
                _, eq, _ = parse_line(steps[fe])
                if eq is not None:
                    assert eq.arithmetic_ok, steps[fe]


def test_gold_labels_as_scores_are_perfect(other):
    r = bench.evaluate_scores(bench.gold_scores(other), other)
    base = bench.baselines(other)
    assert r["f1"] == 1.0 and r["auc"] == 1.0
    assert r["best_of_n"] == base["any of 8 (oracle)"] == r["weighted_vote"]
    assert base["random pick"] < base["any of 8 (oracle)"]


def test_constant_scores_are_no_better_than_the_first_sample(other):
    """The evaluation can fail: equal scores pick sample 0 and rank nothing (AUC 0.5)."""
    flat = bench.flat(other)
    r = bench.evaluate_scores([[0.9] * len(s["steps"]) for s in flat], other)
    assert r["auc"] == 0.5 and r["f1"] == 0.0
    assert r["best_of_n"] == sum(g[0]["right"] for g in other.values()) / len(other)
