"""Vote aggregation (plurality, tie-breaks, agreement, step scores) and consensus with MC labels."""

from __future__ import annotations

import pytest

from prmflow.judge import JudgeVerdict, Vote, aggregate_votes, consensus, load_template

FIRST_ERROR = load_template("first-error")
ANALYSIS = load_template("paragraph-analysis")
EQUIVALENCE = load_template("answer-equivalence")


def fe(k: int) -> Vote:
    return Vote(k, k == -1, True)


def out(correct: bool) -> Vote:
    return Vote(None, correct, True)


NO = Vote(None, None, False, "no_verdict")

# (id, votes, n_steps, expected)
STEP_ROWS = [
    ("one_vote", [fe(1)], 3, JudgeVerdict(1, 0, 1.0, 1, (1.0, 0.0, 0.0), 0.0)),
    ("one_vote_no_error", [fe(-1)], 3, JudgeVerdict(1, 0, 1.0, -1, (1.0, 1.0, 1.0), 1.0)),
    ("majority", [fe(2), fe(2), fe(0)], 3, JudgeVerdict(3, 0, 2 / 3, 2, (2 / 3, 2 / 3, 0.0), 0.0)),
    ("majority_no_error", [fe(-1), fe(-1), fe(1)], 3, JudgeVerdict(3, 0, 2 / 3, -1, (1.0, 2 / 3, 2 / 3), 1.0)),
    # ties break toward the earliest error; "no error" counts as after every step
    ("tie_two_indices", [fe(2), fe(1)], 3, JudgeVerdict(2, 0, 0.5, 1, (1.0, 0.5, 0.0), 0.0)),
    ("tie_index_and_no_error", [fe(-1), fe(2)], 3, JudgeVerdict(2, 0, 0.5, 2, (1.0, 1.0, 0.5), 0.0)),
    ("tie_three_way", [fe(-1), fe(2), fe(0)], 3, JudgeVerdict(3, 0, 1 / 3, 0, (2 / 3, 2 / 3, 1 / 3), 0.0)),
    # plurality, not majority: 2 of 5 is enough when the rest split
    ("plurality", [fe(-1), fe(-1), fe(0), fe(1), fe(2)], 3, JudgeVerdict(5, 0, 0.4, -1, (0.8, 0.6, 0.4), 1.0)),
    # unparsed votes count against agreement (of all K) but not in step scores (of parsed votes)
    ("some_unparsed", [fe(1), NO, fe(1), NO], 3, JudgeVerdict(4, 2, 0.5, 1, (1.0, 0.0, 0.0), 0.0)),
    ("all_unparsed", [NO, NO, NO], 3, JudgeVerdict(3, 3, None, None, None, None)),
    ("no_votes", [], 3, JudgeVerdict(0, 0, None, None, None, None)),
    ("no_steps", [fe(-1)], 0, JudgeVerdict(1, 0, 1.0, -1, (), 1.0)),
]

OUTCOME_ROWS = [
    ("yes", [out(True)], JudgeVerdict(1, 0, 1.0, None, None, 1.0)),
    ("no", [out(False)], JudgeVerdict(1, 0, 1.0, None, None, 0.0)),
    ("majority_yes", [out(True), out(True), out(False)], JudgeVerdict(3, 0, 2 / 3, None, None, 1.0)),
    ("tie_is_incorrect", [out(True), out(False)], JudgeVerdict(2, 0, 0.5, None, None, 0.0)),
    ("unparsed_count_against_agreement", [out(True), NO, NO], JudgeVerdict(3, 2, 1 / 3, None, None, 1.0)),
    ("all_unparsed", [NO], JudgeVerdict(1, 1, None, None, None, None)),
]


@pytest.mark.parametrize("votes,n_steps,expected", [r[1:] for r in STEP_ROWS], ids=[r[0] for r in STEP_ROWS])
@pytest.mark.parametrize("template", [FIRST_ERROR, ANALYSIS], ids=["first-error", "paragraph-analysis"])
def test_step_templates(template, votes, n_steps, expected):
    assert _close(aggregate_votes(template, votes, n_steps), expected)


@pytest.mark.parametrize("votes,expected", [r[1:] for r in OUTCOME_ROWS], ids=[r[0] for r in OUTCOME_ROWS])
@pytest.mark.parametrize("kind", ["answer-equivalence", "rubric"])
def test_outcome_templates(kind, votes, expected):
    assert _close(aggregate_votes(load_template(kind), votes, 3), expected)


def _close(got: JudgeVerdict, expected: JudgeVerdict) -> bool:
    assert (got.votes, got.unparsed, got.first_error, got.outcome) == (
        expected.votes, expected.unparsed, expected.first_error, expected.outcome
    )
    assert got.agreement == (None if expected.agreement is None else pytest.approx(expected.agreement))
    assert got.step_scores == (None if expected.step_scores is None else pytest.approx(expected.step_scores))
    return True


def test_the_order_of_votes_does_not_matter():
    votes = [fe(2), fe(-1), fe(0), fe(2), fe(-1), NO]
    first = aggregate_votes(FIRST_ERROR, votes, 3)
    assert all(aggregate_votes(FIRST_ERROR, v, 3) == first for v in (votes[::-1], votes[2:] + votes[:2]))
    assert first.first_error == 2  # tie between 2 and -1: the error


def test_step_scores_are_prefix_survival():
    scores = aggregate_votes(FIRST_ERROR, [fe(0), fe(1), fe(2), fe(-1)], 3).step_scores
    assert scores == (0.75, 0.5, 0.25)
    assert list(scores) == sorted(scores, reverse=True)


def test_a_vote_out_of_range_is_a_caller_bug():
    with pytest.raises(ValueError, match="first_error must be in"):
        aggregate_votes(FIRST_ERROR, [fe(3)], 3)
    with pytest.raises(ValueError, match="first_error must be in"):
        aggregate_votes(FIRST_ERROR, [Vote(None, False, True)], 3)
    with pytest.raises(ValueError, match="correct set"):
        aggregate_votes(EQUIVALENCE, [Vote(None, None, True)], 3)


CONSENSUS_ROWS = [
    # (judge first error, MC first error, kept, reason)
    (2, 2, True, "agree"),
    (-1, -1, True, "agree"),  # both say "no error": kept (Lessons §3.1.3)
    (0, 0, True, "agree"),
    (1, 3, False, "judge_earlier"),
    (3, 1, False, "judge_later"),
    (-1, 2, False, "only_mc_found_error"),
    (2, -1, False, "only_judge_found_error"),
    (None, 2, None, "judge_unparsed"),
    (None, None, None, "judge_unparsed"),
    (2, None, None, "mc_unlabeled"),
    (-1, None, None, "mc_unlabeled"),
]


@pytest.mark.parametrize("judge,mc,kept,reason", CONSENSUS_ROWS)
def test_consensus(judge, mc, kept, reason):
    assert consensus(judge, mc) == (kept, reason)
