"""Adaptive labelling (process.sequential / adaptive / active) on constructed rollouts with known truth.

The fake estimator draws each start state's rollouts from a fixed, seeded sequence: the j-th rollout
of prefix k is the same whether it comes in one call of M or in rounds of 1, 1, 2, 4. So a sequential
estimate must give exactly the labels of the full budget, on fewer rollouts."""

from __future__ import annotations

import random

import pytest

from prmflow.config import ConfigError
from prmflow.core.rollouts import Estimate, ProcessConfig, RolloutCompletion, label_batch
from prmflow.core.segment import segment_given
from prmflow.core.trajectories import from_segmentation
from prmflow.labelers.process.adaptive import (
    AdaptiveConfig,
    adaptive_budget,
    binomial_rule,
    confident_first_error,
    decision,
    first_error_distribution,
    first_error_prior,
    next_chunk,
    successes_needed,
    threshold_rule,
    weighted_probe,
)
from prmflow.labelers.process.binary_search import BinarySearch
from prmflow.schemas import Problem


def problem(pid: str) -> Problem:
    return Problem(problem_id=pid, source="s", domain="math", prompt=f"q {pid}", reference_answer="1")


def traj(pid: str, n: int, outcome: float, tag: str, **extra):
    p = problem(pid)
    seg = segment_given([f"{tag} step {i}" for i in range(n)])
    t = from_segmentation(p, seg, origin="sampled", max_steps=100, generator=tag, outcome=outcome)
    if extra:
        import dataclasses

        t = dataclasses.replace(t, **extra)
    return p, t


class SequenceEstimator:
    """Prefix k of a trajectory with first error e succeeds with probability ``alive`` if k <= e, else
    ``dead`` (a noisy verifier's false positives); rollout j of a prefix is one fixed draw."""

    def __init__(self, batch, first_errors: dict[str, int], alive: float = 0.7, dead: float = 0.0, seed: int = 0):
        self.batch, self.first_errors, self.alive, self.dead, self.seed = batch, first_errors, alive, dead, seed
        self.drawn: dict[tuple[int, int], int] = {}
        self.calls: list[int] = []

    def outcome(self, tag: str, k: int, j: int) -> bool:
        e = self.first_errors[tag]
        p = self.alive if (e == -1 or k <= e) else self.dead
        return random.Random(f"{self.seed}/{tag}/{k}/{j}").random() < p

    def __call__(self, probes):
        self.calls.append(len(probes))
        out = []
        for p in probes:
            tag = self.batch[p.index][1].generator
            start = self.drawn.get((p.index, p.k), 0)
            m = p.rollouts or 8
            self.drawn[(p.index, p.k)] = start + m
            comps = [RolloutCompletion(f"c{j}", None, 1.0 if self.outcome(tag, p.k, j) else 0.0, "ok", 5, "stop")
                     for j in range(start, start + m)]
            out.append(Estimate(comps, 0, 1000 + p.chunk))
        return out


def corpus(n_traj: int = 40, seed: int = 3):
    rng = random.Random(seed)
    items, errors = [], {}
    for i in range(n_traj):
        n = rng.randint(2, 8)
        e = rng.randint(0, n - 1) if rng.random() < 0.6 else -1
        tag = f"t{i}"
        errors[tag] = e
        items.append(traj(f"p{i % 10}", n, 0.0 if e >= 0 else 1.0, tag))
    return items, errors


def run(items, errors, config, **est):
    estimate = SequenceEstimator(items, errors, **est)
    return label_batch(items, config, estimate), estimate


def labels(out):
    return [(r.trajectory_id, r.step_index, r.hard_label, r.first_error) for r in out.steps]


@pytest.mark.parametrize("method", ["mc", "binary-search"])
@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_sequential_gives_the_full_budgets_labels_on_fewer_rollouts(method, threshold):
    items, errors = corpus()
    full, _ = run(items, errors, ProcessConfig(method=method, rollouts=8, threshold=threshold))
    seq, est = run(items, errors, ProcessConfig(method=method, rollouts=8, threshold=threshold, sequential=True))
    assert labels(seq) == labels(full)
    assert len(seq.rollouts) < 0.8 * len(full.rollouts)
    # every rollout is audited, with its own round's seed, and every start state sums its rollouts
    assert len(seq.rollouts) == sum(s.rollouts for s in seq.start_states)
    assert len({r.rollout_id for r in seq.rollouts}) == len(seq.rollouts)
    assert {r.seed for r in seq.rollouts} > {1000}
    assert len(est.calls) > 1


def test_sequential_noise_aware_keeps_the_binomial_tests_decisions():
    items, errors = corpus(seed=5)
    noise = {"rho0": 0.1, "rho1": 0.1}
    for method in ("mc", "binary-search"):
        full, _ = run(items, errors, ProcessConfig(method=method, rollouts=8, noise_aware=noise), dead=0.1)
        seq, _ = run(items, errors, ProcessConfig(method=method, rollouts=8, noise_aware=noise, sequential=True),
                     dead=0.1)
        assert labels(seq) == labels(full), method
        assert len(seq.rollouts) < len(full.rollouts)


def test_noise_aware_binary_search_resists_false_positives():
    """With 10% false positives "any success" calls dead prefixes alive; the test does not."""
    items, errors = corpus(n_traj=60, seed=11)
    truth = {t.trajectory_id: errors[t.generator] for _, t in items if errors[t.generator] >= 0}

    def accuracy(config):
        out, _ = run(items, errors, config, alive=0.9, dead=0.1)
        found = {r.trajectory_id: r.step_index for r in out.steps if r.first_error}
        return sum(found.get(tid) == e for tid, e in truth.items()) / len(truth)

    plain = accuracy(ProcessConfig(method="binary-search", rollouts=8))
    aware = accuracy(ProcessConfig(method="binary-search", rollouts=8, noise_aware={"rho0": 0.1, "rho1": 0.1}))
    assert aware > plain


@pytest.mark.parametrize("s, n, m, need, expected", [
    (1, 1, 8, 1, True),     # any success: alive at once
    (0, 7, 8, 1, None),     # one rollout left could still succeed
    (0, 8, 8, 1, False),
    (2, 4, 8, 3, None),
    (0, 6, 8, 3, False),    # 0 + 2 left < 3
    (3, 3, 8, 3, True),
])
def test_decision(s, n, m, need, expected):
    assert decision(s, n, m, need) is expected


def test_next_chunk_doubles_and_never_overshoots():
    assert [next_chunk(0, n, 8, 1, r) for r, n in enumerate([0, 1, 2, 4])] == [1, 1, 2, 4]
    assert next_chunk(0, 7, 8, 1, 4) == 1          # only one left
    assert next_chunk(0, 0, 8, 3, 0) == 3          # three successes needed: ask for three at once


def test_successes_needed_matches_each_rule():
    assert successes_needed(8, threshold_rule(0.0)) == 1
    assert successes_needed(4, threshold_rule(0.5)) == 3      # 2/4 is a tie: dead
    assert successes_needed(8, binomial_rule(0.1, 0.05)) == 3  # P(Bin(8, .1) >= 3) = 0.038
    assert successes_needed(2, binomial_rule(0.5, 0.01)) == 3  # P(Bin(2, .5) >= 2) = .25: unreachable


def test_adaptive_budget_gives_easy_problems_fewer_rollouts():
    config = AdaptiveConfig(confidence=0.9, min_rollouts=2, max_rollouts=16)
    rule = threshold_rule(0.0)
    easy, medium, hard = (adaptive_budget(p, rule, config, 8) for p in (0.9, 0.5, 0.1))
    assert easy == 2 and medium == 4 and hard == 16   # 1-(1-p)^M >= 0.9: M = 1 (floor 2), 4, 22 (cap 16)
    # under noise the binomial test needs more: a live prefix must clear the false positives
    noisy = adaptive_budget(0.5, binomial_rule(0.1, 0.05), config, 8, (0.1, 0.1))
    assert noisy > medium


def test_probe_order_follows_the_pass_rate():
    uniform = first_error_prior(8, 0.999)
    assert weighted_probe(0, 8, uniform) == 4
    hard = first_error_prior(8, 0.02)   # errors come early
    assert weighted_probe(0, 8, hard) < 4
    assert abs(sum(hard) - 1) < 1e-9 and hard == sorted(hard, reverse=True)


def test_prior_keeps_the_search_exact_on_monotone_values():
    for e in range(8):
        s = BinarySearch(8, False, prior=first_error_prior(8, 0.05))
        while not s.done:
            for k in s.pending():
                s.observe(k, 1 if k <= e else 0, 4)
        assert s.result().first_error == e


def test_adaptive_binary_search_spends_less_and_finds_the_same_errors_on_easy_problems():
    items, errors = corpus(n_traj=60, seed=7)
    plain, _ = run(items, errors, ProcessConfig(method="binary-search", rollouts=8), alive=0.95)
    adaptive, _ = run(items, errors, ProcessConfig(method="binary-search", rollouts=8, sequential=True,
                                                   adaptive={"confidence": 0.95}), alive=0.95)
    found = lambda out: {r.trajectory_id: r.step_index for r in out.steps if r.first_error}  # noqa: E731
    same = sum(found(adaptive).get(t) == s for t, s in found(plain).items()) / len(found(plain))
    assert same >= 0.9
    assert len(adaptive.rollouts) < 0.5 * len(plain.rollouts)


def test_run_wide_pass_counts_set_the_budget():
    items = [traj("p", 4, 0.0, "a")]
    errors = {"a": 2}
    cfg = ProcessConfig(method="binary-search", rollouts=8, adaptive={"confidence": 0.9, "min_rollouts": 1})
    easy = label_batch(items, cfg, SequenceEstimator(items, errors), pass_counts={"p": (98, 100)})
    hard = label_batch(items, cfg, SequenceEstimator(items, errors), pass_counts={"p": (0, 100)})
    assert {s.rollouts for s in easy.start_states} == {1}
    assert {s.rollouts for s in hard.start_states} == {8}


@pytest.mark.parametrize("scores, kind, expected", [
    ([1.0, 1.0, 0.0, 0.0], "judge", 2),       # every vote: first error at step 2
    ([1.0, 0.5, 0.0, 0.0], "judge", None),    # votes split between steps 1 and 2
    ([0.99, 0.98, 0.01, 0.5], "prm", 2),
    ([0.9, 0.5, 0.5, 0.5], "prm", None),
    ([0.9, None, 0.1], "prm", None),          # a missing score: not confident
])
def test_confident_first_error(scores, kind, expected):
    assert confident_first_error(scores, kind, 0.9) == expected


def test_first_error_distribution_sums_to_one():
    for kind in ("judge", "prm"):
        d = first_error_distribution([0.9, 0.6, 0.3, 0.1], kind)
        assert abs(sum(d) - 1) < 1e-9


@pytest.mark.parametrize("method", ["mc", "binary-search"])
def test_active_selection_skips_confident_trajectories_and_counts_them(method):
    sure = traj("p1", 4, 0.0, "sure", judge_step_scores=(1.0, 1.0, 0.0, 0.0))
    unsure = traj("p2", 4, 0.0, "unsure", judge_step_scores=(1.0, 0.5, 0.5, 0.0))
    unjudged = traj("p3", 4, 0.0, "unjudged")
    right = traj("p4", 4, 1.0, "right", judge_step_scores=(1.0, 1.0, 1.0, 1.0))
    items = [sure, unsure, unjudged, right]
    errors = {"sure": 2, "unsure": 1, "unjudged": 3, "right": -1}
    out, _ = run(items, errors, ProcessConfig(method=method, rollouts=4, active={"score": "judge", "confidence": 0.9}),
                 alive=1.0)
    assert out.skipped == 1
    rolled = {s.trajectory_id for s in out.start_states}
    assert sure[1].trajectory_id not in rolled and unsure[1].trajectory_id in rolled
    rows = [r for r in out.steps if r.trajectory_id == sure[1].trajectory_id]
    assert [r.hard_label for r in rows] == [1.0, 1.0, 0.0, 0.0] and [r.first_error for r in rows] == [False, False, True, False]
    assert all(r.mc_rollouts == 0 and r.mc_value is None for r in rows)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "mc", "adaptive": {}}, "process.adaptive must be null unless process.method is 'binary-search'"),
    ({"method": "reverse-curriculum", "sequential": True}, "process.sequential must be false unless"),
    ({"method": "reverse-curriculum", "active": {}}, "process.active must be null unless"),
    ({"method": "binary-search", "adaptive": {"confidence": 1.5}}, "process.adaptive.confidence must be in"),
    ({"method": "binary-search", "adaptive": {"min_rollouts": 0}}, "process.adaptive.min_rollouts must be >= 1"),
    ({"method": "binary-search", "adaptive": {"min_rollouts": 4, "max_rollouts": 2}}, "process.adaptive.max_rollouts"),
    ({"method": "mc", "active": {"score": "vibes"}}, "process.active.score must be one of"),
    ({"method": "mc", "active": {"confidence": 0.3}}, "process.active.confidence must be in"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ProcessConfig.from_dict(kwargs)
