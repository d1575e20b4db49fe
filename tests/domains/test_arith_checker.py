"""The arith checker on hand-written solutions: every rule of its module docstring, one row each."""

from __future__ import annotations

from fractions import Fraction

import pytest

from prmflow.domains.arith import (
    ArithProblem,
    Equation,
    Operand,
    ProgramStep,
    check_solution,
    check_steps,
    parse_line,
)


def q(i: int) -> Operand:
    return Operand("quantity", i)


def s(i: int) -> Operand:
    return Operand("step", i)


# Ava has 12 apples, buys 3 boxes of 6, is 9 years old (distractor), gives 5 away:
# 3 * 6 = 18, 12 + 18 = 30, 30 - 5 = 25.
APPLES = ArithProblem(
    problem_id="apples",
    prompt=(
        "Ava has 12 apples. Ava buys 3 boxes with 6 apples in each. Ava is 9 years old. "
        "Ava gives 5 apples to Ben. How many apples does Ava have now?"
    ),
    answer=25,
    quantities=(12, 3, 6, 9, 5),
    distractors=(3,),
    program=(
        ProgramStep("*", q(1), q(2), 18),
        ProgramStep("+", q(0), s(0), 30),
        ProgramStep("-", s(1), q(4), 25),
    ),
)

# 40 - 7 - 5: a subtraction chain, where "7 + 5 = 12, 40 - 12 = 28" is a valid regrouping.
CHAIN = ArithProblem(
    problem_id="chain",
    prompt="Ben has 40 cards. He gives 7 cards to Cy and 5 cards to Dee. How many cards are left?",
    answer=28,
    quantities=(40, 7, 5),
    program=(ProgramStep("-", q(0), q(1), 33), ProgramStep("-", s(0), q(2), 28)),
)

# 60 / 2 / 3: the multiplicative twin ("2 * 3 = 6, 60 / 6 = 10").
HALVES = ArithProblem(
    problem_id="halves",
    prompt="There are 60 beads. Half go to Eli, and Eli splits his into 3 equal piles. How many beads per pile?",
    answer=10,
    quantities=(60, 2, 3),
    program=(ProgramStep("/", q(0), q(1), 30), ProgramStep("/", s(0), q(2), 10)),
)

# (a + b) * c: distributivity ("a*c + b*c") is not a regrouping the checker accepts.
PRODUCT_OF_SUM = ArithProblem(
    problem_id="product-of-sum",
    prompt="Fay has 4 red and 3 blue bags with 5 marbles in each. How many marbles does she have?",
    answer=35,
    quantities=(4, 3, 5),
    program=(ProgramStep("+", q(0), q(1), 7), ProgramStep("*", s(0), q(2), 35)),
)

T, F = True, False

CASES = [
    # id, problem, solution, labels, first error, error kinds by step (None = correct), final answer, final line
    ("correct", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 5 = 25\nThe answer is 25",
     [T, T, T, T], -1, [None] * 4, 25, T),
    ("reordered", APPLES, "6 * 3 = 18\n12 - 5 = 7\n7 + 18 = 25\nThe answer is 25",
     [T, T, T, T], -1, [None] * 4, 25, T),
    ("wrong-arithmetic", APPLES, "3 * 6 = 18\n12 + 18 = 31\n31 - 5 = 26\nThe answer is 26",
     [T, F, F, F], 1, [None, "arithmetic", "propagated", "wrong_answer"], 26, T),
    ("wrong-quantity-distractor", APPLES, "3 * 6 = 18\n9 + 18 = 27\n27 - 5 = 22\nThe answer is 22",
     [T, F, F, F], 1, [None, "distractor", "propagated", "wrong_answer"], 22, T),
    ("wrong-quantity-relevant", APPLES, "3 * 5 = 15\n12 + 15 = 27\n27 - 5 = 22\nThe answer is 22",
     [F, F, F, F], 0, ["off_path", "propagated", "propagated", "wrong_answer"], 22, T),
    ("right-number-wrong-place", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 3 = 27\nThe answer is 27",
     [T, T, F, F], 2, [None, None, "off_path", "wrong_answer"], 27, T),
    ("missed-step-shows-at-answer", APPLES, "3 * 6 = 18\n12 + 18 = 30\nThe answer is 30",
     [T, T, F], 2, [None, None, "wrong_answer"], 30, T),
    ("valid-partial-then-stop", APPLES, "3 * 6 = 18\n18 - 5 = 13\nThe answer is 13",
     [T, T, F], 2, [None, None, "wrong_answer"], 13, T),
    ("wrong-operation", APPLES, "3 + 6 = 9\n12 + 9 = 21\n21 - 5 = 16\nThe answer is 16",
     [F, F, F, F], 0, ["wrong_operation", "propagated", "propagated", "wrong_answer"], 16, T),
    ("skipped-step-in-head", APPLES, "3 * 6 = 18\n30 - 5 = 25\nThe answer is 25",
     [T, F, T], 1, [None, "unknown_operand", None], 25, T),
    ("skipped-step-bare-answer", APPLES, "3 * 6 = 18\n12 + 18 = 30\nThe answer is 25",
     [T, T, F], 2, [None, None, "unsupported_answer"], 25, T),
    ("extra-prose", APPLES,
     "First count the apples in the boxes.\n3 * 6 = 18\nSo Ava has 12 + 18 = 30 apples.\n\n30 - 5 = 25\nThe answer is 25.",
     [T, T, T, T, T], -1, [None] * 5, 25, T),
    ("no-final-line", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 5 = 25",
     [T, T, T], -1, [None] * 3, None, F),
    ("right-answer-via-wrong-step", APPLES, "3 * 6 = 18\n12 + 18 = 31\n31 - 6 = 25\nThe answer is 25",
     [T, F, F, T], 1, [None, "arithmetic", "propagated", None], 25, T),
    ("right-answer-via-arithmetic-slip", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 6 = 25\nThe answer is 25",
     [T, T, F, T], 2, [None, None, "arithmetic", None], 25, T),
    ("self-correction", APPLES, "3 * 6 = 18\n12 + 18 = 31\n12 + 18 = 30\n30 - 5 = 25\nThe answer is 25",
     [T, F, T, T, T], 1, [None, "arithmetic", None, None, None], 25, T),
    ("hallucinated-number", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 7 = 23\nThe answer is 23",
     [T, T, F, F], 2, [None, None, "unknown_operand", "wrong_answer"], 23, T),
    ("chain-line-is-malformed", APPLES, "3 * 6 = 18\n12 + 18 - 5 = 25\nThe answer is 25",
     [T, F, F], 1, [None, "malformed", "unsupported_answer"], 25, T),
    ("answer-in-words-is-malformed", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 5 = 25\nThe answer is twenty-five",
     [T, T, T, F], 3, [None, None, None, "malformed"], None, F),
    ("answer-not-last", APPLES, "3 * 6 = 18\n12 + 18 = 30\n30 - 5 = 25\nThe answer is 25\n25 + 1 = 26",
     [T, T, T, T, F], 4, [None, None, None, None, "unknown_operand"], 25, F),
    ("empty", APPLES, "", [], -1, [], None, F),
    ("sum-regrouped", CHAIN, "7 + 5 = 12\n40 - 12 = 28\nThe answer is 28", [T, T, T], -1, [None] * 3, 28, T),
    ("sum-other-order", CHAIN, "40 - 5 = 35\n35 - 7 = 28\nThe answer is 28", [T, T, T], -1, [None] * 3, 28, T),
    ("sum-wrong-sign", CHAIN, "7 - 5 = 2\n40 - 2 = 38\nThe answer is 38",
     [F, F, F], 0, ["wrong_operation", "propagated", "wrong_answer"], 38, T),
    ("product-regrouped", HALVES, "2 * 3 = 6\n60 / 6 = 10\nThe answer is 10", [T, T, T], -1, [None] * 3, 10, T),
    ("inexact-division", HALVES, "60 / 2 = 30\n30 / 4 = 7\nThe answer is 7",
     [T, F, F], 1, [None, "arithmetic", "wrong_answer"], 7, T),
    ("decimal-division", HALVES, "60 / 2 = 30\n3 / 2 = 1.5\n30 / 3 = 10\nThe answer is 10",
     [T, F, T, T], 1, [None, "wrong_operation", None, None], 10, T),
    ("distributivity-not-accepted", PRODUCT_OF_SUM, "4 * 5 = 20\n3 * 5 = 15\n20 + 15 = 35\nThe answer is 35",
     [F, F, F, T], 0, ["off_path", "off_path", "propagated", None], 35, T),
    ("unicode-operators", PRODUCT_OF_SUM, "4 + 3 = 7\n7 × 5 = 35\nThe answer is 35", [T, T, T], -1, [None] * 3, 35, T),
]  # fmt: skip


@pytest.mark.parametrize(
    ("problem", "solution", "labels", "first_error", "errors", "final_answer", "final_line"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_check_solution(problem, solution, labels, first_error, errors, final_answer, final_line):
    result = check_solution(problem, solution)
    assert result.labels == labels
    assert [v.error for v in result.verdicts] == errors
    assert result.first_error_index == first_error
    assert result.final_answer == final_answer
    assert result.final_line_present is final_line
    assert result.answer_correct is (final_answer == problem.answer)
    assert result.solved is (final_line and first_error == -1 and final_answer == problem.answer)
    # prefix labels: the PRM800K convention, True strictly before the first error.
    expected_prefix = labels if first_error < 0 else [i < first_error for i in range(len(labels))]
    assert result.prefix_labels == expected_prefix
    assert result.float_labels == [float(x) for x in labels]
    assert len(result.steps) == len(labels)


@pytest.mark.parametrize(
    ("solution", "well_formed"),
    [
        ("3 * 6 = 18\n12 + 18 = 30\n30 - 5 = 25\nThe answer is 25", True),
        ("3 * 6 = 18\n12 + 18 = 31\nThe answer is 31", True),  # wrong, but in the trained format
        ("Let me think.\n3 * 6 = 18\nThe answer is 18", False),  # prose line
        ("3 * 6 = 18\n12 + 18 = 30", False),  # no final line
        ("3 * 6 = 18\nThe answer is 18\nThe answer is 18", False),  # two answer lines
        ("", False),
    ],
)
def test_well_formed(solution, well_formed):
    assert check_solution(APPLES, solution).well_formed is well_formed


@pytest.mark.parametrize(
    ("line", "role", "equation", "answer"),
    [
        ("12 + 18 = 30", "equation", Equation(Fraction(12), "+", Fraction(18), Fraction(30)), None),
        ("12-5=7", "equation", Equation(Fraction(12), "-", Fraction(5), Fraction(7)), None),
        ("So 7 x 5 = 35 marbles.", "equation", Equation(Fraction(7), "*", Fraction(5), Fraction(35)), None),
        ("60 ÷ 6 = 10", "equation", Equation(Fraction(60), "/", Fraction(6), Fraction(10)), None),
        ("5 - -3 = 8", "equation", Equation(Fraction(5), "-", Fraction(-3), Fraction(8)), None),
        ("3 / 2 = 1.5", "equation", Equation(Fraction(3), "/", Fraction(2), Fraction(3, 2)), None),
        ("The answer is 25", "answer", None, Fraction(25)),
        ("So the final answer is: $25.", "answer", None, Fraction(25)),
        ("the answer is -4", "answer", None, Fraction(-4)),
        ("The answer is 25 apples", "malformed", None, None),
        ("2 + 3 + 4 = 9", "malformed", None, None),
        ("2 + 3 = 5 + 4", "malformed", None, None),
        ("(2 + 3) = 5", "malformed", None, None),
        ("Step 2: 12 + 18 = 30", "equation", Equation(Fraction(12), "+", Fraction(18), Fraction(30)), None),
        ("x = 5", "malformed", None, None),
        ("12 + 18 = 30 = 30", "malformed", None, None),
        ("Now add the boxes.", "prose", None, None),
        ("19 - 11 - 15", "malformed", None, None),
        ("23 -", "malformed", None, None),
        ("42", "malformed", None, None),
        ("...", "malformed", None, None),
        ("", "prose", None, None),
        ("Add 12 + 18 first", "malformed", None, None),
        ("Ava has 12 apples and 18 more", "prose", None, None),
    ],
)
def test_parse_line(line, role, equation, answer):
    assert parse_line(line) == (role, equation, answer)


def test_division_by_zero_is_an_arithmetic_error():
    result = check_solution(HALVES, "60 / 0 = 0\nThe answer is 10")
    assert [v.error for v in result.verdicts] == ["arithmetic", "unsupported_answer"]


def test_check_steps_keeps_alignment_with_given_steps():
    steps = ["3 * 6 = 18\n12 + 18 = 30", "   ", "30 - 5 = 24", "The answer is 24"]
    result = check_steps(APPLES, steps)
    assert result.labels == [True, True, False, False]
    assert [v.role for v in result.verdicts] == ["equation", "prose", "equation", "answer"]
    assert result.first_error_index == 2
    assert result.first_error is not None and result.first_error.error == "arithmetic"


def test_multi_line_step_reports_its_first_wrong_line():
    result = check_steps(APPLES, ["3 * 6 = 19\n12 + 18 = 30", "30 - 5 = 25\nThe answer is 25"])
    assert result.labels == [False, True]
    assert result.verdicts[0].error == "arithmetic"
    assert result.final_line_present and result.final_answer == 25


def test_check_steps_rejects_a_bare_string():
    with pytest.raises(TypeError, match="check_solution"):
        check_steps(APPLES, "3 * 6 = 18")


def test_check_solution_rejects_non_text():
    with pytest.raises(TypeError, match="list"):
        check_solution(APPLES, ["3 * 6 = 18"])  # type: ignore[arg-type]
