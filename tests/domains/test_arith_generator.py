"""The arith generator: determinism, the shape promises of its docstring, and checker agreement."""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import asdict

import pytest

from prmflow.domains.arith import (
    MAX_VALUE,
    MIN_VALUE,
    PROMPT_TEMPLATE,
    ArithProblem,
    Operand,
    ProgramStep,
    check_solution,
    format_prompt,
    generate_problems,
)

N = 1000


@pytest.fixture(scope="module")
def problems() -> list[ArithProblem]:
    return generate_problems(N, seed=123)


@pytest.mark.parametrize("seed", [0, 7, 1000, 2**40])
def test_same_seed_same_problems(seed):
    assert generate_problems(40, seed) == generate_problems(40, seed)


def test_different_seeds_differ():
    assert [p.prompt for p in generate_problems(20, 1)] != [p.prompt for p in generate_problems(20, 2)]


def test_fewer_problems_are_a_prefix():
    assert generate_problems(5, 3) == generate_problems(30, 3)[:5]


def test_problem_ids_are_unique_and_name_the_seed(problems):
    assert len({p.problem_id for p in problems}) == N
    assert problems[17].problem_id == "arith-s123-17"


def test_demonstrations_pass_the_checker(problems):
    for p in problems:
        result = check_solution(p, p.demonstration)
        assert result.solved and result.well_formed, (p.prompt, p.demonstration, result.verdicts)
        assert all(result.labels)
        assert result.final_answer == p.answer
        assert list(p.steps) == p.demonstration.splitlines()


@pytest.mark.parametrize("num_ops", [2, 3, 4, 5])
def test_every_op_count_occurs(problems, num_ops):
    counts = Counter(p.num_ops for p in problems)
    assert set(counts) == {2, 3, 4, 5}
    assert counts[num_ops] > N // 8  # uniform over 4 counts: ~250 each


def test_all_operators_occur(problems):
    ops = Counter(s.op for p in problems for s in p.program)
    assert set(ops) == {"+", "-", "*", "/"}


def test_division_is_exact_and_values_small(problems):
    for p in problems:
        for step in p.program:
            left, right = p.operand_value(step.left), p.operand_value(step.right)
            if step.op == "/":
                assert left % right == 0 and left // right == step.value
            assert MIN_VALUE <= step.value <= MAX_VALUE
        assert all(MIN_VALUE <= v <= MAX_VALUE for v in p.quantities)


def test_prompt_states_exactly_the_quantities(problems):
    for p in problems:
        assert tuple(int(x) for x in re.findall(r"\d+", p.prompt)) == p.quantities


def test_distractors_and_carried_values_occur(problems):
    assert sum(bool(p.distractors) for p in problems) > N // 3
    used = {(i, p.problem_id) for p in problems for i in p.distractors}
    for p in problems:
        for step in p.program:
            for o in (step.left, step.right):
                assert not (o.source == "quantity" and (o.index, p.problem_id) in used)
    # Some program value is used by two later steps (a carried intermediate), or a stated number twice.
    def carries(p: ArithProblem) -> bool:
        refs = Counter((o.source, o.index) for s in p.program for o in (s.left, s.right))
        return max(refs.values()) > 1

    assert sum(carries(p) for p in problems) > N // 10


def test_answers_are_not_copyable(problems):
    """The answer is neither a stated number nor an earlier result (see the generator's retry rule)."""
    for p in problems:
        values = [s.value for s in p.program]
        assert len(set(values)) == len(values)
        assert p.answer not in p.quantities


def test_wording_varies(problems):
    """Many sentence shapes once names, objects and numbers are abstracted away."""
    from prmflow.domains.arith.problems import CONTAINERS, NAMES, OBJECTS

    words = {w for pair in OBJECTS + CONTAINERS for w in pair} | set(NAMES)
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b")
    shapes = {pattern.sub("_", re.sub(r"\d+", "N", sentence)) for p in problems for sentence in p.prompt.split(". ")}
    assert len(shapes) > 40


def test_format_prompt_uses_the_template(problems):
    p = problems[0]
    assert format_prompt(p) == PROMPT_TEMPLATE.format(prompt=p.prompt) == f"Question: {p.prompt}\nAnswer:\n"
    assert format_prompt(p.prompt) == format_prompt(p)


def test_demonstration_format(problems):
    for p in problems[:50]:
        *steps, last = p.demonstration.split("\n")
        assert last == f"The answer is {p.answer}"
        assert all(re.fullmatch(r"\d+ [-+*/] \d+ = \d+", line) for line in steps)
        assert len(steps) == p.num_ops


def test_problems_are_plain_data(problems):
    d = asdict(problems[0])
    assert d["demonstration"] == problems[0].demonstration
    assert d["steps"] == problems[0].steps


def test_domain_imports_without_torch_or_beam():
    import subprocess

    code = (
        "import sys, prmflow.domains.arith as a; a.generate_problems(3, 0);"
        "bad = [m for m in ('torch', 'apache_beam', 'transformers') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n=-1, seed=0), "n must be >= 0"),
        (dict(n=1, seed=0, min_ops=4, max_ops=3), "min_ops"),
        (dict(n=1, seed=0, min_ops=0), "min_ops"),
    ],
)
def test_generate_problems_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_problems(**kwargs)


def _problem(program, quantities=(3, 4), distractors=(), answer=None):
    return ArithProblem(
        problem_id="x",
        prompt="p",
        answer=program[-1].value if answer is None else answer,
        quantities=quantities,
        program=program,
        distractors=distractors,
    )


Q0, Q1 = Operand("quantity", 0), Operand("quantity", 1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _problem((ProgramStep("+", Q0, Q1, 8),)), "3 \\+ 4 = 8, but it is 7"),
        (lambda: _problem((ProgramStep("/", Q0, Q1, 0),)), "3 / 4 is not exact"),
        (lambda: _problem((ProgramStep("+", Q0, Operand("quantity", 5), 7),)), "quantity 5"),
        (lambda: _problem((ProgramStep("+", Q0, Operand("step", 0), 7),)), "not an earlier step"),
        (lambda: _problem((ProgramStep("+", Q0, Q1, 7),), distractors=(1,)), "distractor quantity 1"),
        (lambda: _problem((ProgramStep("+", Q0, Q1, 7), ProgramStep("*", Q0, Q1, 12))), "never used"),
        (lambda: _problem((ProgramStep("+", Q0, Q1, 7),), answer=8), "answer 8"),
        (lambda: _problem((ProgramStep("^", Q0, Q1, 7),)), "op must be one of"),
        (lambda: _problem((), answer=7), "at least one step"),
        (lambda: Operand("constant", 0), "source must be"),
    ],
)
def test_invalid_problems_say_what_is_wrong(build, message):
    with pytest.raises(ValueError, match=message):
        build()
