"""The fake backend as a judge of the fake policy's arithmetic, through the whole judge path
(render, sample, parse, aggregate)."""

from __future__ import annotations

import pytest

from prmflow.judge import aggregate_votes, load_template, parse_vote, render_judge_prompt
from prmflow.judge.prompt import KINDS
from prmflow.samplers.base import SamplerConfig, SamplingRequest
from prmflow.samplers.fake_backend import FakeSampler, check_options, fake_answer
from prmflow.schemas import Problem, Trajectory

PROBLEM = Problem("p1", "test", "arith", "What is 3 + 5 + 9?", reference_answer="17", rubric="Add them up.")
RIGHT = ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 8", "Step 3: 8 + 9 = 17\nThe answer is 17.")
SLIP_AT_1 = ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 9", "Step 3: 9 + 9 = 18\nThe answer is 18.")
SLIP_AT_0 = ("Step 1: 0 + 3 = 4", "Step 2: 4 + 5 = 9", "Step 3: 9 + 9 = 18\nThe answer is 18.")
BROKEN_CHAIN = ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 8", "Step 3: 7 + 9 = 16\nThe answer is 16.")
WRONG_FINAL = ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 8", "Step 3: 8 + 9 = 17\nThe answer is 18.")
NO_FINAL = ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 8", "Step 3: 8 + 9 = 17")


def trajectory(steps: tuple[str, ...]) -> Trajectory:
    return Trajectory("t1", "p1", "test", "arith", "sampled", "\n".join(steps), steps, ((0, 0),) * len(steps),
                      ("response",) * len(steps))


def judge(kind: str, steps: tuple[str, ...], *, votes: int = 1, temperature: float = 0.0, problem: Problem = PROBLEM,
          max_tokens: int = 4096, **engine_kwargs):
    template = load_template(kind)
    sampler = FakeSampler(SamplerConfig(backend="fake", model="fake", engine_kwargs=engine_kwargs))
    request = SamplingRequest("r1", render_judge_prompt(template, problem, trajectory(steps)), n=votes,
                              temperature=temperature, max_tokens=max_tokens)
    result = sampler.generate([request])[0]
    assert result.ok
    parsed = [parse_vote(template, c.text, len(steps)) for c in result.completions]
    return parsed, aggregate_votes(template, parsed, len(steps)), result


# (steps, true first error, outcome for answer-equivalence and rubric)
HONEST_ROWS = [
    (RIGHT, -1, 1.0),
    (SLIP_AT_1, 1, 0.0),
    (SLIP_AT_0, 0, 0.0),
    (BROKEN_CHAIN, 2, 0.0),
    (WRONG_FINAL, 2, 0.0),
    (NO_FINAL, -1, 0.0),  # every step right, but no final answer to compare
]


@pytest.mark.parametrize("steps,first_error,outcome", HONEST_ROWS)
@pytest.mark.parametrize("kind", KINDS)
def test_an_honest_judge(kind, steps, first_error, outcome):
    votes, verdict, _ = judge(kind, steps, judge_error=0.0)
    assert all(v.parsed for v in votes)
    if load_template(kind).judges_steps:
        assert verdict.first_error == first_error
        assert verdict.outcome == (1.0 if first_error == -1 else 0.0)
    else:
        assert verdict.first_error is None and verdict.outcome == outcome


def test_answer_equivalence_reads_the_reference():
    other = Problem("p1", "test", "arith", "What is 3 + 5 + 9?", reference_answer="18", rubric="Add them up.")
    assert judge("answer-equivalence", RIGHT, problem=other)[1].outcome == 0.0
    assert judge("answer-equivalence", WRONG_FINAL[:2] + ("Step 3: 8 + 9 = 17\nThe answer is 17.",),
                 problem=other)[1].outcome == 0.0


def test_rubric_judges_against_the_fake_policy_answer():
    assert fake_answer(PROBLEM.prompt) == "17"
    assert judge("rubric", RIGHT)[1].outcome == 1.0


def test_greedy_judging_never_errs():
    """judge_error applies at temperature > 0 only, like the policy's step_error."""
    for kind in KINDS:
        verdict = judge(kind, SLIP_AT_1, votes=1, judge_error=1.0)[1]
        assert (verdict.agreement, verdict.outcome) == (1.0, 0.0)
        assert verdict.first_error == (1 if load_template(kind).judges_steps else None)


@pytest.mark.parametrize("kind", KINDS)
def test_a_judge_that_always_errs_is_always_wrong(kind):
    votes, _, _ = judge(kind, SLIP_AT_1, votes=20, temperature=1.0, judge_error=1.0)
    assert all(v.parsed for v in votes)
    if load_template(kind).judges_steps:
        assert all(v.first_error != 1 for v in votes)
        assert len({v.first_error for v in votes}) > 1  # drawn among the other indices
        assert {v.first_error for v in votes} <= {-1, 0, 2}
    else:
        assert all(v.correct for v in votes)  # the wrong solution called right


def test_judge_error_is_a_rate_and_seeded_per_request():
    votes, verdict, result = judge("first-error", SLIP_AT_1, votes=400, temperature=1.0, judge_error=0.25)
    wrong = sum(v.first_error != 1 for v in votes)
    assert 60 <= wrong <= 140  # 100 expected; binomial sd ~8.7
    assert verdict.first_error == 1
    again = judge("first-error", SLIP_AT_1, votes=400, temperature=1.0, judge_error=0.25)[2]
    assert [c.text for c in again.completions] == [c.text for c in result.completions]


def test_max_tokens_cuts_a_judge_answer():
    votes, _, result = judge("paragraph-analysis", RIGHT, max_tokens=3)
    assert result.completions[0].finish_reason == "length"
    assert votes[0] == votes[0].__class__(None, None, False, "no_verdict")


def test_the_policy_is_unchanged_by_the_judge_options():
    sampler = FakeSampler(SamplerConfig(backend="fake", model="fake", engine_kwargs={"judge_echo": True}))
    text = sampler.generate([SamplingRequest("r", "What is 3 + 5?", temperature=0.0)])[0].completions[0].text
    assert text == "Step 1: 0 + 3 = 3\nStep 2: 3 + 5 = 8\nThe answer is 8."


@pytest.mark.parametrize("kind", KINDS)
def test_an_echo_is_the_prompt_and_no_verdict(kind):
    votes, verdict, result = judge(kind, RIGHT, judge_echo=True)
    assert result.completions[0].text == render_judge_prompt(load_template(kind), PROBLEM, trajectory(RIGHT))
    assert not votes[0].parsed and verdict.outcome is None


@pytest.mark.parametrize(
    "options,message",
    [
        ({"judge_error": -0.1}, "engine_kwargs.judge_error must be a number in [0, 1], got -0.1"),
        ({"judge_error": True}, "engine_kwargs.judge_error must be a number in [0, 1], got True"),
        ({"judge_error": "0.1"}, "engine_kwargs.judge_error must be a number in [0, 1], got '0.1'"),
        ({"judge_echo": 1}, "engine_kwargs.judge_echo must be true or false, got 1"),
        ({"judge_errors": 0.1}, "engine_kwargs has unknown keys ['judge_errors']"),
    ],
)
def test_options_are_checked(options, message):
    with pytest.raises(ValueError) as e:
        check_options(options)
    assert message in str(e.value)
