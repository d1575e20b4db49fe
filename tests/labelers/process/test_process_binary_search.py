"""OmegaPRM binary search: conventions, hand-built cases, and agreement with exhaustive MC."""

from __future__ import annotations

import math
import random

import pytest

from prmflow.labelers.process.binary_search import (
    BinarySearch,
    BinarySearchConfig,
    run_rounds,
)
from prmflow.labelers.process.mc import MCConfig, first_error, mc_labels

N = None


def _estimator(tables: list[list[int]], m: int, calls: list[list[tuple[int, int]]] | None = None):
    """An engine stand-in: tables[i][k] = successes of prefix k of trajectory i, out of m."""

    def estimate(queries):
        if calls is not None:
            calls.append(list(queries))
        return [(tables[i][k], m) for i, k in queries]

    return estimate


def _search(successes_by_k: list[int], m: int, outcome_correct=False, **cfg):
    n = len(successes_by_k) - 1
    s = BinarySearch(n, outcome_correct, BinarySearchConfig(**cfg))
    (result,) = run_rounds([s], _estimator([successes_by_k], m))
    return result


# successes_by_k[k] for k = 0..n out of M; k = 0 and k = n are never probed (the search must
# not ask for them), so they hold -1 to make a probe there blow up in the estimator's caller.
@pytest.mark.parametrize(
    ("successes_by_k", "m", "cfg", "first", "labels", "probed"),
    [
        pytest.param([-1, 0, 0, 0, -1], 4, {}, 0, [0.0, 0.0, 0.0, 0.0], [1, 2], id="all-wrong"),
        pytest.param([-1, 0, 0, 0, 0, -1], 4, {}, 0, [0.0] * 5, [1, 2], id="first-step-wrong"),
        pytest.param([-1, 4, 3, 2, -1], 4, {}, 3, [1.0, 1.0, 1.0, 0.0], [2, 3], id="last-step-wrong"),
        pytest.param([-1, 1, 1, 0, 0, 0, -1], 1, {}, 2, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0], [1, 2, 3], id="m1"),
        pytest.param(
            [-1, 4, 4, 4, 1, 0, 0, 0, -1],
            4,
            {},
            4,
            [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            [4, 5, 6],
            id="middle-error",
        ),
        # Tie: value == threshold is dead. M = 4, threshold 0.5: 2/4 at k=2 is dead.
        pytest.param(
            [-1, 3, 2, 2, -1], 4, {"threshold": 0.5}, 1, [1.0, 0.0, 0.0, 0.0], [1, 2], id="tie-dead"
        ),
        pytest.param(
            [-1, 3, 3, 3, -1], 4, {"threshold": 0.5}, 3, [1.0, 1.0, 1.0, 0.0], [2, 3], id="above-tie"
        ),
        pytest.param(
            [-1, 4, 0, 0, -1],
            4,
            {"after_error": "unlabeled"},
            1,
            [1.0, 0.0, N, N],
            [1, 2],
            id="after-unlabeled",
        ),
        pytest.param([-1, -1], 4, {}, 0, [0.0], [], id="one-step"),
    ],
)
def test_wrong_outcome_cases(successes_by_k, m, cfg, first, labels, probed):
    result = _search(successes_by_k, m, **cfg)
    assert result.first_error == first
    assert result.labels == labels
    assert sorted(result.step_values) == sorted(probed)
    assert result.rollouts_spent == m * len(probed)
    assert len(successes_by_k) - 1 not in result.step_values  # k = n comes from the outcome
    assert 0 not in result.step_values  # the bare question is never probed


@pytest.mark.parametrize(
    ("policy", "labels"),
    [("all_positive", [1.0, 1.0, 1.0, 1.0]), ("skip", [N, N, N, N])],
)
def test_correct_outcome(policy, labels):
    s = BinarySearch(4, outcome_correct=True, config=BinarySearchConfig(correct_outcome=policy))
    assert s.done and s.pending() == []
    result = s.result()
    assert result.first_error == -1
    assert result.labels == labels
    assert result.rollouts_spent == 0 and result.step_values == {} and result.rounds == 0


@pytest.mark.parametrize(("outcome", "first"), [(False, None), (True, -1)])
def test_no_steps(outcome, first):
    result = BinarySearch(0, outcome).result()
    assert result.first_error == first and result.labels == [] and result.rollouts_spent == 0


def test_round_by_round_state_machine():
    s = BinarySearch(8, outcome_correct=False)
    assert s.pending() == [4]
    s.observe(4, 2, 4)  # alive: error is after step 3
    assert s.pending() == [6]
    s.observe(6, 0, 4)  # dead: first dead k in (4, 6]
    assert s.pending() == [5]
    s.observe(5, 0, 4)
    assert s.done and s.pending() == []
    r = s.result()
    assert r.first_error == 4  # smallest dead k = 5, minus 1
    assert r.labels == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert r.step_values == {4: (2, 4), 6: (0, 4), 5: (0, 4)}
    assert r.rollouts_spent == 12 and r.rounds == 3


def test_several_probes_per_round():
    # n = 9, first dead k = 6. Round 1 probes 2, 4, 6 (6 dead, 4 alive), round 2 probes 5.
    successes = [-1, 4, 4, 3, 3, 2, 0, 0, 0, -1]
    s = BinarySearch(9, False, BinarySearchConfig(probes_per_round=3))
    assert s.pending() == [2, 4, 6]
    (r,) = run_rounds([s], _estimator([successes], 4))
    assert r.first_error == 5
    assert sorted(r.step_values) == [2, 4, 5, 6]
    assert r.rounds == 2


def test_observe_validation():
    s = BinarySearch(8, outcome_correct=False)
    with pytest.raises(ValueError, match=r"k must be one of the pending prefixes \[4\], got 3"):
        s.observe(3, 1, 4)
    with pytest.raises(ValueError, match="successes must be in"):
        s.observe(4, 5, 4)
    with pytest.raises(ValueError, match="rollouts must be >= 1 for a probed prefix, got 0"):
        s.observe(4, 0, 0)
    with pytest.raises(RuntimeError, match="not done"):
        s.result()
    s.observe(4, 0, 4)
    with pytest.raises(ValueError, match="k must be one of the pending prefixes"):
        s.observe(4, 0, 4)  # already observed, not pending any more
    with pytest.raises(ValueError, match="n_steps must be >= 0, got -1"):
        BinarySearch(-1, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.0}, r"threshold must be in \[0, 1\), got 1.0"),
        ({"threshold": -0.5}, r"threshold must be in \[0, 1\), got -0.5"),
        ({"after_error": "positive"}, "after_error must be one of"),
        ({"correct_outcome": "negative"}, "correct_outcome must be one of"),
        ({"probes_per_round": 0}, "probes_per_round must be >= 1, got 0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BinarySearchConfig(**kwargs)


def test_run_rounds_batches_across_trajectories():
    m = 4
    tables = [
        [-1, 4, 4, 4, 4, 4, 4, 0, -1],  # n = 8, first dead k = 7
        [-1, 0, 0, -1],  # n = 3, first dead k = 1
        [-1, -1, -1],  # correct outcome, never probed
        [-1, 2, 1, 0, 0, -1],  # n = 5, first dead k = 3
    ]
    searches = [
        BinarySearch(8, False),
        BinarySearch(3, False),
        BinarySearch(2, True),
        BinarySearch(5, False),
    ]
    calls: list[list[tuple[int, int]]] = []
    results = run_rounds(searches, _estimator(tables, m, calls))
    assert [r.first_error for r in results] == [6, 0, -1, 2]
    # One estimator call per round, as many rounds as the longest search: ceil(log2 8) = 3.
    assert len(calls) == 3
    assert {i for i, _ in calls[0]} == {0, 1, 3}  # the first round batches every wrong trajectory
    assert all(i != 2 for call in calls for i, _ in call)


def test_run_rounds_checks_estimator_length():
    with pytest.raises(ValueError, match="estimate must return one"):
        run_rounds([BinarySearch(4, False)], lambda queries: [])


def test_non_monotone_values_can_differ_from_exhaustive():
    # k=1 dead, k=2..4 alive (noise), k=5 dead from the outcome. Binary search never looks at k=1.
    successes = [-1, 0, 3, 3, 3, -1]
    result = _search(successes, 4)
    assert result.first_error == 4
    assert first_error([s / 4 for s in successes[1:-1]] + [0.0]) == 0


def _exhaustive(table: list[int], m: int):
    """Math-Shepherd over the same trajectory: k = 1..n-1 rolled out, k = n from the wrong outcome."""
    n = len(table) - 1
    rollouts = [m] * (n - 1) + [0]
    return mc_labels(table[1:n] + [0], rollouts, MCConfig(rollouts_per_step=m), outcome_correct=False)


def _monotone_table(rng: random.Random, n: int, m: int, first_dead: int) -> list[int]:
    """successes[k], k = 0..n, non-increasing in k, > 0 before first_dead and 0 from it on."""
    alive = sorted((rng.randint(1, m) for _ in range(first_dead - 1)), reverse=True)
    return [m] + alive + [0] * (n - first_dead + 1)


@pytest.mark.parametrize("probes_per_round", [1, 2, 3])
def test_matches_exhaustive_mc_on_random_monotone_values(probes_per_round):
    rng = random.Random(20240611 + probes_per_round)
    searches, tables, ms, exhaustive = [], [], [], []
    for _ in range(600):
        n = rng.randint(1, 40)
        m = rng.choice([1, 2, 4, 8, 16])
        table = _monotone_table(rng, n, m, first_dead=rng.randint(1, n))
        searches.append(BinarySearch(n, False, BinarySearchConfig(probes_per_round=probes_per_round)))
        tables.append(table)
        ms.append(m)
        exhaustive.append(_exhaustive(table, m))

    def estimate(queries):
        return [(tables[i][k], ms[i]) for i, k in queries]

    results = run_rounds(searches, estimate)
    for s, r, ex in zip(searches, results, exhaustive, strict=True):
        n = s.n_steps
        assert r.first_error == ex.first_error
        assert r.labels == ex.hard  # monotone: 1 before the first zero, 0 from it on
        assert r.rollouts_spent <= ex.rollouts_spent
        if probes_per_round == 1:
            assert len(r.step_values) <= math.ceil(math.log2(n))
            if n >= 4:
                assert r.rollouts_spent < ex.rollouts_spent


@pytest.mark.parametrize("threshold", [0.25, 0.5])
def test_matches_exhaustive_with_threshold(threshold):
    rng = random.Random(7)
    m = 8
    for _ in range(300):
        n = rng.randint(1, 30)
        table = [m] + sorted((rng.randint(0, m) for _ in range(n - 1)), reverse=True) + [0]
        (r,) = run_rounds(
            [BinarySearch(n, False, BinarySearchConfig(threshold=threshold))], _estimator([table], m)
        )
        assert r.first_error == first_error([s / m for s in table[1:n]] + [0.0], threshold)


@pytest.mark.parametrize(("n", "first_dead"), [(8, 6), (16, 3), (32, 32), (5, 1)])
def test_fewer_rollouts_than_exhaustive(n, first_dead):
    m = 8
    table = [m] * first_dead + [0] * (n - first_dead + 1)
    result = _search(table, m)
    exhaustive = _exhaustive(table, m)
    assert result.first_error == exhaustive.first_error == first_dead - 1
    assert result.rollouts_spent <= m * math.ceil(math.log2(n))
    assert result.rollouts_spent < exhaustive.rollouts_spent == m * (n - 1)


def test_run_rounds_abandons_only_the_search_whose_prefix_could_not_be_estimated():
    # search 0's prefixes are all dead from k=3 on; search 1's engine refuses its first probe
    searches = [BinarySearch(8, False), BinarySearch(8, False)]
    calls = []

    def estimate(queries):
        calls.append(list(queries))
        return [None if i == 1 else ((0, 4) if k >= 3 else (2, 4)) for i, k in queries]

    results = run_rounds(searches, estimate)
    assert results[1] is None
    assert results[0] is not None and results[0].first_error == 2
    assert all(i == 0 for call in calls[1:] for i, _ in call)  # never asked again for search 1
