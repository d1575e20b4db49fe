"""Math-Shepherd Monte-Carlo labels on hand-built rollout counts."""

from __future__ import annotations

import pytest

from prmflow.labelers.process.mc import MCConfig, first_error, hard_label, mc_labels, mc_value

N = None


@pytest.mark.parametrize(
    ("successes", "rollouts", "m", "threshold", "values", "hard", "first"),
    [
        pytest.param([4, 4, 4], None, 4, 0.0, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], -1, id="all-correct"),
        pytest.param([0, 0, 0], None, 4, 0.0, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 0, id="all-wrong"),
        pytest.param([0, 3, 4], None, 4, 0.0, [0.0, 0.75, 1.0], [0.0, 1.0, 1.0], 0, id="first-step-wrong"),
        pytest.param([4, 3, 0], None, 4, 0.0, [1.0, 0.75, 0.0], [1.0, 1.0, 0.0], 2, id="last-step-wrong"),
        pytest.param([1, 1, 0], None, 1, 0.0, [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], 2, id="m1"),
        pytest.param([1, 0], [1, 1], 8, 0.0, [1.0, 0.0], [1.0, 0.0], 1, id="m1-explicit-rollouts"),
        # HE: a single success out of 8 is enough.
        pytest.param([1, 0], None, 8, 0.0, [0.125, 0.0], [1.0, 0.0], 1, id="he-any-success"),
        # Ties: value == threshold is labelled 0 (hard = value > threshold).
        pytest.param([2, 3, 1], None, 4, 0.5, [0.5, 0.75, 0.25], [0.0, 1.0, 0.0], 0, id="tie-at-0.5"),
        pytest.param([1, 2], None, 4, 0.25, [0.25, 0.5], [0.0, 1.0], 0, id="tie-at-0.25"),
        pytest.param([3, 4], None, 10, 0.3, [0.3, 0.4], [0.0, 1.0], 0, id="tie-at-0.3"),
        pytest.param([0, 2], [0, 4], 4, 0.0, [N, 0.5], [N, 1.0], -1, id="unmeasured-step"),
        pytest.param([], None, 4, 0.0, [], [], -1, id="no-steps"),
    ],
)
def test_mc_labels(successes, rollouts, m, threshold, values, hard, first):
    out = mc_labels(successes, rollouts, MCConfig(rollouts_per_step=m, threshold=threshold))
    assert out.values == pytest.approx(values)
    assert out.hard == hard
    assert out.soft == out.values
    assert out.first_error == first
    assert out.rollouts == (list(rollouts) if rollouts is not None else [m] * len(successes))
    assert out.rollouts_spent == sum(out.rollouts)


@pytest.mark.parametrize(
    ("outcome", "last_value", "first"),
    [(True, 1.0, -1), (False, 0.0, 1), (None, None, -1)],
)
def test_last_step_from_outcome(outcome, last_value, first):
    out = mc_labels([4, 0], [4, 0], MCConfig(rollouts_per_step=4), outcome_correct=outcome)
    assert out.values == [1.0, last_value]
    assert out.first_error == first
    assert out.rollouts_spent == 4


def test_measured_last_step_is_not_overridden_by_outcome():
    out = mc_labels([4, 2], None, MCConfig(rollouts_per_step=4), outcome_correct=False)
    assert out.values == [1.0, 0.5]


@pytest.mark.parametrize(
    ("value", "threshold", "expected"),
    [
        (None, 0.0, None),
        (0.0, 0.0, 0.0),
        (1e-12, 0.0, 0.0),
        (0.01, 0.0, 1.0),
        (0.5, 0.5, 0.0),
        (0.51, 0.5, 1.0),
    ],
)
def test_hard_label(value, threshold, expected):
    assert hard_label(value, threshold) == expected


def test_mc_value():
    assert mc_value(3, 4) == 0.75
    assert mc_value(0, 0) is None
    with pytest.raises(ValueError, match="successes must be in"):
        mc_value(5, 4)


@pytest.mark.parametrize(
    ("values", "threshold", "expected"),
    [([1.0, 0.5, 0.0], 0.0, 2), ([N, 0.0], 0.0, 1), ([1.0, 0.5], 0.5, 1), ([1.0, N], 0.0, -1), ([], 0.0, -1)],
)
def test_first_error(values, threshold, expected):
    assert first_error(values, threshold) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rollouts_per_step": 0}, "rollouts_per_step must be >= 1, got 0"),
        ({"rollouts_per_step": -3}, "rollouts_per_step must be >= 1, got -3"),
        ({"rollouts_per_step": True}, "rollouts_per_step must be an int, got True"),
        ({"rollouts_per_step": 4, "threshold": 1.0}, r"threshold must be in \[0, 1\), got 1.0"),
        ({"rollouts_per_step": 4, "threshold": -0.1}, r"threshold must be in \[0, 1\), got -0.1"),
        ({"rollouts_per_step": 4, "threshold": float("nan")}, "threshold must be a finite number"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MCConfig(**kwargs)


def test_config_is_frozen():
    cfg = MCConfig(rollouts_per_step=8)
    with pytest.raises(AttributeError):
        cfg.threshold = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("successes", "rollouts", "message"),
    [
        ([5], [4], r"step 0 successes must be in \[0, rollouts=4\], got 5"),
        ([-1], [4], "successes must be in"),
        ([0], [-1], "rollouts must be >= 0, got -1"),
        ([1, 2], [4], r"rollouts must have one entry per step \(2\), got 1"),
    ],
)
def test_count_validation(successes, rollouts, message):
    with pytest.raises(ValueError, match=message):
        mc_labels(successes, rollouts, MCConfig(rollouts_per_step=4))
