"""label_batch with a fake estimator whose prefix values follow a known first error."""

import pytest

from prmflow.core.rollouts import Estimate, ProcessConfig, RolloutCompletion, label_batch
from prmflow.core.segment import segment_given
from prmflow.core.trajectories import from_segmentation
from prmflow.schemas import Problem

PROBLEM = Problem(problem_id="p", source="s", domain="math", prompt="q", reference_answer="1")


def traj(n: int, outcome: float, tag: str):
    seg = segment_given([f"{tag} step {i}" for i in range(n)])
    return PROBLEM, from_segmentation(PROBLEM, seg, origin="sampled", max_steps=100, generator=tag, outcome=outcome)


def fake_estimator(first_errors: dict[str, int], m: int, calls: list):
    """Prefix k of a trajectory whose first error is e succeeds in all M rollouts iff k <= e."""

    def estimate(probes):
        calls.append(len(probes))
        out = []
        for p in probes:
            t = batch[p.index][1]
            e = first_errors[t.generator]
            ok = e == -1 or p.k <= e
            out.append(Estimate([RolloutCompletion(f"c{i}", "1" if ok else "2", 1.0 if ok else 0.0, "ok", 3, "stop") for i in range(m)], 0, 7))
        return out

    batch: list = []
    return batch, estimate


@pytest.mark.parametrize("method", ["mc", "binary-search"])
@pytest.mark.parametrize(
    "n, first_error",
    [(6, 0), (6, 5), (6, 2), (1, 0), (8, 7), (8, 3)],  # first step wrong, last step wrong, middle, one step
)
def test_methods_find_the_first_error(method, n, first_error):
    items = [traj(n, 0.0, "a")]
    calls: list = []
    batch, estimate = fake_estimator({"a": first_error}, 4, calls)
    batch.extend(items)
    out = label_batch(items, ProcessConfig(method=method, rollouts=4), estimate)
    flags = [r.first_error for r in out.steps]
    assert flags.index(True) == first_error and flags.count(True) == 1
    labels = [r.label for r in out.steps]
    assert labels[:first_error] == [1.0] * first_error and labels[first_error] == 0.0
    # every rollout is audited: rollout rows == sum of mc_rollouts == sum of start_states.rollouts
    assert len(out.rollouts) == sum(r.mc_rollouts or 0 for r in out.steps) == sum(s.rollouts for s in out.start_states)


def test_binary_search_spends_fewer_rollouts_and_batches_rounds():
    first_errors = {f"t{i}": e for i, e in enumerate([0, 3, 7, 12, 15, -1])}
    items = [traj(16, 0.0 if e >= 0 else 1.0, name) for name, e in first_errors.items()]
    spent = {}
    for method in ("mc", "binary-search"):
        calls: list = []
        batch, estimate = fake_estimator(first_errors, 4, calls)
        batch.extend(items)
        out = label_batch(items, ProcessConfig(method=method, rollouts=4), estimate)
        spent[method] = len(out.rollouts)
        found = {}
        for r in out.steps:
            if r.first_error:
                found[r.trajectory_id] = r.step_index
        assert sorted(found.values()) == sorted(e for e in first_errors.values() if e >= 0)
        if method == "binary-search":
            assert len(calls) <= 4  # ceil(log2 16) rounds, each one engine call for the whole batch
        else:
            assert calls == [6 * 15]  # every boundary of every trajectory in one call
    assert spent["binary-search"] < 0.35 * spent["mc"]


def test_mc_values_labels_and_last_step_from_outcome():
    items = [traj(4, 0.0, "a")]
    calls: list = []
    batch, estimate = fake_estimator({"a": 2}, 3, calls)
    batch.extend(items)
    out = label_batch(items, ProcessConfig(method="mc", rollouts=3, relative={}), estimate)
    rows = out.steps
    assert [r.mc_value for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert [r.mc_rollouts for r in rows] == [3, 3, 3, 0]  # k = n is the outcome itself, no rollouts
    assert [r.hard_label for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert [r.soft_label for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert [r.relative_label for r in rows][2] == 0.0


def test_failed_probe_is_reported_and_not_counted():
    items = [traj(3, 0.0, "a")]

    def estimate(probes):
        return [Estimate(error="prompt_too_long: 300 > 256") for _ in probes]

    out = label_batch(items, ProcessConfig(method="mc", rollouts=2), estimate)
    assert len(out.failures) == 2 and out.rollouts == [] and out.start_states == []
    assert [r.mc_rollouts for r in out.steps] == [0, 0, 0]


def test_reverse_curriculum_start_states_from_the_end():
    items = [traj(5, 1.0, "demo")]
    calls: list = []
    batch, estimate = fake_estimator({"demo": -1}, 2, calls)
    batch.extend(items)
    out = label_batch(items, ProcessConfig(method="reverse-curriculum", rollouts=2, stages=3), estimate)
    stages = sorted((s.stage, s.k) for s in out.start_states)
    assert [s for s, _ in stages] == [0, 1, 2]
    ks = [k for _, k in stages]
    assert ks[0] == 4 and ks == sorted(ks, reverse=True)  # stage 0 starts nearest the end
    assert all(s.success_rate == 1.0 for s in out.start_states)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "exhaustive"}, "process.method must be one of"),
        ({"rollouts": 0}, "process.rollouts must be >= 1, got 0"),
        ({"temperature": 0}, "process.temperature must be > 0"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProcessConfig(**kwargs)


def test_consistency_is_a_top_level_section_not_a_process_option():
    from prmflow.config import ConfigError

    with pytest.raises(ConfigError, match=r"unknown keys \['consistency'\]"):
        ProcessConfig.from_dict({"method": "mc", "consistency": {"mode": "hard"}})
