"""Best-of-N selectors, the paired bootstrap, step AUC and the validation-chosen threshold."""

from __future__ import annotations

import pytest

from prmflow.prm import bon
from prmflow.prm.baselines import regex_verifier
from prmflow.prm.metrics import auc, best_threshold, step_metrics


def C(answer, right, *scores):
    return bon.Candidate(answer, right, list(scores))


def test_selectors():
    p = [C("8", False, 0.9, 0.2), C("8", False, 0.6, 0.6), C("7", True, 0.7, 0.8), C(None, False, 1.0)]
    assert p[0].score == 0.2 and p[3].score == 1.0
    assert bon.best_of_n(p) is False  # the answerless solution scores highest
    assert bon.best_of_n(p[:3]) is True
    assert bon.majority_vote(p) is False  # "8" twice
    assert bon.weighted_vote(p) is False  # 0.2 + 0.6 = 0.8 > 0.7
    assert bon.weighted_vote([p[0], p[2]]) is True
    assert bon.any_of_n(p) is True and bon.random_pick(p) == 0.25


def test_ties_go_to_the_lowest_sample_index():
    assert bon.best_of_n([C("1", True, 0.5), C("2", False, 0.5)]) is True
    assert bon.majority_vote([C("2", False), C("1", True)]) is False
    assert bon.weighted_vote([C("1", True, 0.5), C("2", False, 0.5)]) is True


def test_paired_bootstrap():
    a, b = [1.0] * 50 + [0.0] * 50, [0.0] * 100
    mean, lo, hi = bon.paired_bootstrap(a, b, resamples=500, seed=3)
    assert mean == 0.5 and 0.35 < lo < 0.5 < hi < 0.65
    assert bon.paired_bootstrap(a, b, resamples=500, seed=3) == (mean, lo, hi)
    assert bon.paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="two equal non-empty lists"):
        bon.paired_bootstrap([1.0], [])


def test_auc_and_step_auc():
    assert auc([0.9, 0.8], [0.1]) == 1.0 and auc([0.1], [0.9]) == 0.0 and auc([0.5], [0.5]) == 0.5
    assert auc([], [0.1]) is None
    # steps after the first error do not count; the first error is the negative
    m = step_metrics([([0.9, 0.2, 0.95], [1.0, 0.0, 0.0]), ([0.8, 0.7], [1.0, 1.0])])
    assert m.step_auc == 1.0
    m = step_metrics([([0.9, 0.85, 0.1], [1.0, 0.0, 0.0]), ([0.8, 0.7], [1.0, 1.0])])
    assert m.step_auc == pytest.approx(1 / 3)  # the error (0.85) is below 0.9 only, above 0.8 and 0.7


def test_best_threshold_is_chosen_on_the_scores_not_fixed_at_half():
    """A PRM whose scores sit in [0.7, 0.95]: every step is 'correct' at 0.5; the chosen threshold
    separates them, and the F1 at it is 1.0."""
    pairs = [([0.95, 0.72], [1.0, 0.0]), ([0.93, 0.9], [1.0, 1.0]), ([0.71, 0.9], [0.0, 0.0])]
    assert step_metrics(pairs).processbench_f1 == 0.0
    t = best_threshold(pairs)
    assert 0.72 <= t < 0.9
    assert step_metrics(pairs, t).processbench_f1 == 1.0
    assert best_threshold([]) == 0.5


def test_regex_verifier():
    assert regex_verifier(["3 + 4 = 7", "7 * 2 = 15", "So she has 14.", "The answer is 14"]) == [1.0, 0.0, 1.0, 1.0]


def test_soft_references_count_as_correct_above_the_reference_threshold():
    """MC soft labels: 0.25 is a step from which 1 rollout in 4 succeeded, a correct step under
    reference 0 (the hard-estimation rule), an error under 0.5."""
    pairs = [([0.9, 0.8, 0.1], [0.5, 0.25, 0.0])]
    assert step_metrics(pairs, 0.5, reference=0.0).acc_erroneous == 1.0  # first error at step 2 both ways
    assert step_metrics(pairs, 0.5).acc_erroneous == 0.0  # at 0.5 the reference's first error is step 1
    both = [*pairs, ([0.9, 0.7], [1.0, 0.75])]
    assert 0.1 <= best_threshold(both, reference=0.0) < 0.7
    assert step_metrics(both, best_threshold(both, reference=0.0), reference=0.0).processbench_f1 == 1.0
