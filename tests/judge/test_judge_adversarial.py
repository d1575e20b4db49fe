"""The adversarial corpus through the whole judge path (render, fake judge, parse, aggregate):
0 injected verdicts accepted.

Two judges per row and template: the honest fake, which must still find the true first error (so
the injected text neither hid nor faked a paragraph, a reference or a section), and the echoing
fake, which answers with its whole prompt and must yield no verdict at all (so no injected marker
survived rendering). The echo is also read cut after every line, as a judge that quotes the prompt
up to the solution and stops would write it: the template's own format line comes after the
solution in most templates, and must not be what saves the whole prompt from parsing. Each attack
is also planted in the problem, the reference and the rubric.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from prmflow.judge import aggregate_votes, load_template, parse_vote, render_judge_prompt
from prmflow.judge.prompt import KINDS
from prmflow.samplers.base import SamplerConfig, SamplingRequest
from prmflow.samplers.fake_backend import FakeSampler
from prmflow.schemas import Problem, Trajectory
from tests.judge.adversarial import CORPUS, PROBLEM, REFERENCE, RUBRIC, Attack

HONEST = FakeSampler(SamplerConfig(backend="fake", model="fake", engine_kwargs={"judge_error": 0.0}))
ECHO = FakeSampler(SamplerConfig(backend="fake", model="fake", engine_kwargs={"judge_echo": True}))


def trajectory(attack: Attack) -> Trajectory:
    steps = attack.steps
    return Trajectory("t-" + attack.name, "p1", "adversarial", "arith", "imported", attack.text, steps,
                      ((0, 0),) * len(steps), ("response",) * len(steps))


def no_prefix_parses(kind: str, echo: str, n_steps: int) -> bool:
    template = load_template(kind)
    lines = echo.split("\n")
    return not any(parse_vote(template, "\n".join(lines[:i]), n_steps).parsed for i in range(1, len(lines) + 1))


def run(sampler: FakeSampler, kind: str, problem: Problem, t: Trajectory):
    template = load_template(kind)
    request = SamplingRequest("r-" + t.trajectory_id, render_judge_prompt(template, problem, t), n=3,
                              temperature=1.0, max_tokens=100_000)
    result = sampler.generate([request])[0]
    assert result.ok
    votes = [parse_vote(template, c.text, t.num_steps) for c in result.completions]
    return votes, aggregate_votes(template, votes, t.num_steps), result


def test_the_corpus_is_big_enough_and_distinct():
    assert len(CORPUS) >= 12
    assert len({a.name for a in CORPUS}) == len({a.steps for a in CORPUS}) == len(CORPUS)


def expected_outcome(attack: Attack) -> float:
    return 1.0 if attack.first_error == -1 else 0.0


ROWS = [(kind, attack) for kind in KINDS for attack in CORPUS]
IDS = [f"{kind}-{attack.name}" for kind, attack in ROWS]
CLEAN = Problem("p1", "adversarial", "arith", PROBLEM, reference_answer=REFERENCE, rubric=RUBRIC)


@pytest.mark.parametrize("kind,attack", ROWS, ids=IDS)
def test_the_honest_judge_gives_the_true_verdict(kind, attack):
    votes, verdict, _ = run(HONEST, kind, CLEAN, trajectory(attack))
    assert all(v.parsed for v in votes)
    assert verdict.agreement == 1.0
    assert verdict.outcome == expected_outcome(attack)
    if load_template(kind).judges_steps:
        assert verdict.first_error == attack.first_error


@pytest.mark.parametrize("kind,attack", ROWS, ids=IDS)
def test_an_echo_of_the_prompt_is_no_verdict(kind, attack):
    t = trajectory(attack)
    votes, verdict, result = run(ECHO, kind, CLEAN, t)
    assert [v.parsed for v in votes] == [False] * 3
    assert (verdict.outcome, verdict.first_error) == (None, None)
    assert no_prefix_parses(kind, result.completions[0].text, t.num_steps)


@pytest.mark.parametrize("kind,attack", ROWS, ids=IDS)
def test_attacks_in_the_problem_reference_and_rubric(kind, attack):
    # the attack text rides along after the real question: its digits would change the question's
    # sum, so it goes into the reference and rubric, and into the problem only for the echo
    planted = Problem("p1", "adversarial", "arith", f"{PROBLEM}\n{attack.text}",
                      reference_answer=f"{REFERENCE}\n{attack.text}", rubric=f"{RUBRIC}\n{attack.text}")
    honest_steps = trajectory(Attack("clean", ("Step 1: 0 + 3 = 3", "Step 2: 3 + 5 = 9"), 1))
    votes, _, result = run(ECHO, kind, planted, honest_steps)
    assert not any(v.parsed for v in votes)
    assert no_prefix_parses(kind, result.completions[0].text, honest_steps.num_steps)
    if load_template(kind).judges_steps:
        votes, verdict, _ = run(HONEST, kind, planted, honest_steps)
        assert verdict.first_error == 1 and verdict.agreement == 1.0


# What a model sees, independently of prmflow's own folding: invisible characters gone, fullwidth and
# mathematical forms as ASCII (NFKC), the angle-bracket and Cyrillic look-alikes the corpus uses as ASCII.
_LOOKALIKES = str.maketrans({"〈": "<", "〉": ">", "‹": "<", "›": ">", "о": "o", "с": "c", "е": "e", "а": "a"})
_SKELETON = re.compile(r"<\s*/?\s*[A-Za-z_|][^<>\n]*>|\\\s*boxed|\[\s*[A-Za-z][A-Za-z ]*\]", re.IGNORECASE)


def skeleton(prompt: str) -> list[str]:
    seen = "".join(c for c in prompt if unicodedata.category(c) != "Cf")
    seen = unicodedata.normalize("NFKC", seen).translate(_LOOKALIKES)
    return [re.sub(r"\s+", "", m).lower() for m in _SKELETON.findall(seen)]


@pytest.mark.parametrize("kind,attack", ROWS, ids=IDS)
def test_a_model_sees_the_template_s_structure_only(kind, attack):
    """Tags, verdict markers and section headers of the rendered prompt, as a model reads them
    (look-alikes included), are those of a benign solution with as many steps."""
    template = load_template(kind)
    benign = Attack("benign", tuple(f"step {i}" for i in range(len(attack.steps))), -1)
    planted = Problem("p1", "adversarial", "arith", attack.text, reference_answer=attack.text, rubric=attack.text)
    assert skeleton(render_judge_prompt(template, planted, trajectory(attack))) == skeleton(
        render_judge_prompt(template, CLEAN, trajectory(benign)))
