"""Relative labels (GenPRM RPE ratio, StepWiser-style difference) on hand-built MC values."""

from __future__ import annotations

import pytest

from prmflow.labelers.process.relative import RelativeConfig, relative_labels, relative_progress

N = None


@pytest.mark.parametrize(
    ("values", "empty", "cfg", "labels"),
    [
        pytest.param([1.0, 1.0, 1.0], N, {}, [1.0, 1.0, 1.0], id="all-correct"),
        # Step 0: 0/1 = 0 < 0.8; later steps follow a dead prefix and stay dead (v_i = 0).
        pytest.param([0.0, 0.0, 0.0], N, {}, [0.0, 0.0, 0.0], id="all-wrong"),
        # Measured question value 0.8: step 0 drops it to 0.2 (ratio 0.25), the rest keep it.
        pytest.param([0.2, 0.2, 0.2], 0.8, {}, [0.0, 1.0, 1.0], id="first-step-wrong"),
        pytest.param([0.9, 0.9, 0.3], N, {}, [1.0, 1.0, 0.0], id="last-step-wrong"),
        # Hard problem: absolute values are low but no step loses progress.
        pytest.param([0.25, 0.25, 0.25], 0.25, {}, [1.0, 1.0, 1.0], id="hard-problem-all-good"),
        # M = 1: values are 0 or 1; v_{i-1} = 0 is the undefined-ratio case.
        pytest.param([1.0, 0.0, 1.0], N, {}, [1.0, 0.0, 1.0], id="m1-by-current"),
        pytest.param([1.0, 0.0, 1.0], N, {"zero_previous": "negative"}, [1.0, 0.0, 0.0], id="m1-negative"),
        pytest.param([1.0, 0.0, 1.0], N, {"zero_previous": "unlabeled"}, [1.0, 0.0, N], id="m1-unlabeled"),
        # Ties reach the threshold: ratio >= threshold is 1.
        pytest.param([0.8], N, {}, [1.0], id="tie-ratio-0.8"),
        pytest.param([0.4], 0.5, {}, [1.0], id="tie-ratio-0.4/0.5"),
        pytest.param([0.39], 0.5, {}, [0.0], id="below-ratio"),
        pytest.param([0.5, 0.25], N, {"threshold": 0.5}, [1.0, 1.0], id="tie-ratio-custom"),
        # 0.3 - 0.1 is 0.19999999999999998 in floating point; still a tie with 0.2.
        pytest.param([0.3], 0.1, {"mode": "difference", "threshold": 0.2}, [1.0], id="tie-difference-float"),
        pytest.param(
            [0.5, 0.6, 0.4], 0.5, {"mode": "difference"}, [1.0, 1.0, 0.0], id="difference-default-0"
        ),
        pytest.param([0.0, 0.5], N, {"mode": "difference"}, [0.0, 1.0], id="difference-no-division"),
        # Unmeasured values are not bridged.
        pytest.param([0.5, N, 0.5], N, {}, [0.0, N, N], id="missing-value"),
        # Question value assumed 0: step 0 is judged by its own value.
        pytest.param([0.5, 0.5], N, {"empty_prefix_value": 0.0}, [1.0, 1.0], id="assumed-dead-question"),
        pytest.param([0.0], N, {"empty_prefix_value": 0.0}, [0.0], id="dead-question-dead-step"),
        pytest.param([], N, {}, [], id="no-steps"),
    ],
)
def test_relative_labels(values, empty, cfg, labels):
    assert relative_labels(values, RelativeConfig(**cfg), empty_prefix=empty) == labels


def test_relative_progress_values():
    cfg = RelativeConfig()
    assert relative_progress([0.5, 0.25, 0.0, 0.5], cfg) == pytest.approx([0.5, 0.5, 0.0, N])
    diff = RelativeConfig(mode="difference")
    assert relative_progress([0.5, 0.25], diff, empty_prefix=0.75) == pytest.approx([-0.25, -0.25])


def test_resolved_threshold():
    assert RelativeConfig().resolved_threshold == 0.8
    assert RelativeConfig(mode="difference").resolved_threshold == 0.0
    assert RelativeConfig(threshold=0.6).resolved_threshold == 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "log"}, "mode must be one of"),
        ({"threshold": -0.1}, "threshold must be >= 0 for mode 'ratio', got -0.1"),
        (
            {"mode": "difference", "threshold": 1.5},
            r"threshold must be in \[-1, 1\] for mode 'difference', got 1.5",
        ),
        ({"threshold": float("inf")}, "threshold must be finite"),
        ({"empty_prefix_value": 1.5}, r"empty_prefix_value must be in \[0, 1\], got 1.5"),
        ({"zero_previous": "positive"}, "zero_previous must be one of"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RelativeConfig(**kwargs)


@pytest.mark.parametrize(
    ("values", "empty", "message"),
    [([1.2], N, r"values\[0\] must be in \[0, 1\]"), ([0.5], -0.1, r"empty_prefix must be in \[0, 1\]")],
)
def test_value_validation(values, empty, message):
    with pytest.raises(ValueError, match=message):
        relative_labels(values, RelativeConfig(), empty_prefix=empty)
