"""MetaStone-S1 consistency weights: hard, class-balanced and soft, on hand-computed examples."""

from __future__ import annotations

import pytest

from prmflow.labelers.process.consistency import (
    ConsistencyConfig,
    agreement,
    balanced_class_weights,
    batch_consistency_weights,
    class_counts,
    consistency_weights,
    pseudo_labels,
)

N = None


@pytest.mark.parametrize(
    ("scores", "ties", "expected"),
    [
        ([0.9, 0.1, 0.5, N], "drop", [1.0, 0.0, N, N]),
        ([0.9, 0.1, 0.5, N], "positive", [1.0, 0.0, 1.0, N]),
        ([0.9, 0.1, 0.5, N], "negative", [1.0, 0.0, 0.0, N]),
    ],
)
def test_pseudo_labels(scores, ties, expected):
    assert pseudo_labels(scores, ConsistencyConfig(ties=ties)) == expected


@pytest.mark.parametrize(
    ("scores", "outcome", "cfg", "weights"),
    [
        pytest.param([0.9, 0.8, 0.7], True, {}, [1.0, 1.0, 1.0], id="all-correct-agree"),
        pytest.param([0.1, 0.2, 0.3], False, {}, [1.0, 1.0, 1.0], id="all-wrong-agree"),
        pytest.param([0.9, 0.8, 0.7], False, {}, [0.0, 0.0, 0.0], id="all-good-steps-wrong-outcome"),
        pytest.param([0.2, 0.9, 0.9], True, {}, [0.0, 1.0, 1.0], id="first-step-wrong"),
        pytest.param([0.9, 0.9, 0.2], False, {}, [0.0, 0.0, 1.0], id="last-step-wrong"),
        # MC values from M = 1 rollouts (0 or 1) binarised at 0.5.
        pytest.param([1.0, 0.0, 1.0], True, {}, [1.0, 0.0, 1.0], id="m1-right"),
        pytest.param([1.0, 0.0, 0.0], False, {}, [0.0, 1.0, 1.0], id="m1-wrong"),
        # A score at the threshold: MetaStone-S1's strict comparisons keep it on neither side.
        pytest.param([0.5, 0.5], True, {}, [0.0, 0.0], id="tie-drop-right"),
        pytest.param([0.5, 0.5], False, {}, [0.0, 0.0], id="tie-drop-wrong"),
        pytest.param([0.5], True, {"ties": "positive"}, [1.0], id="tie-positive"),
        pytest.param([0.5], False, {"ties": "negative"}, [1.0], id="tie-negative"),
        # MC values as the score: value 0 (no success) is a negative pseudo-label.
        pytest.param([0.5, 0.0], False, {"threshold": 0.0, "ties": "negative"}, [0.0, 1.0], id="mc-values"),
        # Logit-scale scores (an external PRM's raw head): threshold 0.
        pytest.param([2.3, -0.7], True, {"threshold": 0.0}, [1.0, 0.0], id="logits"),
        pytest.param([0.9, N], True, {}, [1.0, 0.0], id="missing-score"),
    ],
)
def test_hard_weights(scores, outcome, cfg, weights):
    assert consistency_weights(scores, outcome, ConsistencyConfig(mode="hard", **cfg)) == weights


# Hand-computed batch: T1 keeps 2 positives, T2 keeps 2 negatives, T3 keeps 1 negative.
BATCH = [
    ([0.9, 0.8, 0.1], True),
    ([0.7, 0.3, 0.2], False),
    ([0.6, 0.4], False),
]


def test_class_counts():
    assert class_counts(BATCH, ConsistencyConfig(mode="balanced")) == (2, 3)
    assert agreement(*BATCH[1], ConsistencyConfig()) == [False, True, True]


@pytest.mark.parametrize(
    ("smoothing", "factor", "pos", "neg"),
    [
        # MetaStone-S1 code: counts + 1 -> P = 3, Q = 4, N = 7; pos = 1.5 * 4/7, neg = 3/7.
        (1.0, 1.5, 1.5 * 4 / 7, 3 / 7),
        # Without smoothing: P = 2, Q = 3, N = 5; pos = 1.5 * 3/5 = 0.9, neg = 2/5.
        (0.0, 1.5, 0.9, 0.4),
        (0.0, 1.0, 0.6, 0.4),
    ],
)
def test_balanced_batch(smoothing, factor, pos, neg):
    cfg = ConsistencyConfig(mode="balanced", count_smoothing=smoothing, positive_factor=factor)
    assert balanced_class_weights(2, 3, cfg) == pytest.approx((pos, neg))
    weights = batch_consistency_weights(BATCH, cfg)
    assert weights[0] == pytest.approx([pos, pos, 0.0])
    assert weights[1] == pytest.approx([0.0, neg, neg])
    assert weights[2] == pytest.approx([0.0, neg])


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "smoothing", "expected"),
    [
        (4, 0, 1.0, (1.5 * 1 / 6, 5 / 6)),  # only positives: they weigh little, a negative would weigh a lot
        (4, 0, 0.0, (0.0, 1.0)),  # unsmoothed and one class: positives get 0 (why the code adds 1)
        (0, 0, 0.0, (0.0, 0.0)),  # nothing kept, nothing to weigh
        (0, 0, 1.0, (0.75, 0.5)),
        (3, 3, 0.0, (0.75, 0.5)),  # balanced classes: only the 1.5 factor remains
    ],
)
def test_balanced_class_weights_edges(n_pos, n_neg, smoothing, expected):
    cfg = ConsistencyConfig(mode="balanced", count_smoothing=smoothing)
    assert balanced_class_weights(n_pos, n_neg, cfg) == pytest.approx(expected)


def test_balanced_single_trajectory_needs_class_weights():
    cfg = ConsistencyConfig(mode="balanced")
    with pytest.raises(ValueError, match="class_weights must be given for mode 'balanced'"):
        consistency_weights([0.9], True, cfg)
    assert consistency_weights([0.9, 0.1], True, cfg, class_weights=(0.3, 0.7)) == [0.3, 0.0]


def test_balanced_counts_can_be_split_across_shards():
    # Counting per shard and summing gives the batch weights: what a Beam combine would do.
    cfg = ConsistencyConfig(mode="balanced")
    shard_counts = [class_counts(BATCH[:1], cfg), class_counts(BATCH[1:], cfg)]
    n_pos, n_neg = (sum(c[0] for c in shard_counts), sum(c[1] for c in shard_counts))
    weights = balanced_class_weights(n_pos, n_neg, cfg)
    per_traj = [consistency_weights(s, o, cfg, class_weights=weights) for s, o in BATCH]
    assert per_traj == batch_consistency_weights(BATCH, cfg)


@pytest.mark.parametrize(
    ("scores", "outcome", "weights"),
    [
        ([0.9, 0.2, N], True, [0.9, 0.2, 0.0]),
        ([0.9, 0.2, N], False, [0.1, 0.8, 0.0]),
        ([1.0, 0.0], True, [1.0, 0.0]),  # M = 1 MC values: soft = hard
        ([0.5], False, [0.5]),  # a tie is a coin flip
    ],
)
def test_soft_weights(scores, outcome, weights):
    assert consistency_weights(scores, outcome, ConsistencyConfig(mode="soft")) == pytest.approx(weights)


def test_soft_rejects_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"scores\[0\] must be in \[0, 1\] for mode 'soft', got 2.3"):
        consistency_weights([2.3], True, ConsistencyConfig(mode="soft"))


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_batch_matches_per_trajectory(mode):
    cfg = ConsistencyConfig(mode=mode)
    assert batch_consistency_weights(BATCH, cfg) == [consistency_weights(s, o, cfg) for s, o in BATCH]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "focal"}, "mode must be one of"),
        ({"ties": "random"}, "ties must be one of"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"positive_factor": 0.0}, "positive_factor must be > 0, got 0.0"),
        ({"count_smoothing": -1.0}, "count_smoothing must be >= 0, got -1.0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConsistencyConfig(**kwargs)
