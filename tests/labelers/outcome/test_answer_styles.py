"""Regression table for answer styles: one row per way a real model states (or hides) its answer.

Rows quote public model outputs: ProcessBench (Qwen, Llama generators; id given), PRM800K
(OpenAI's generator), GSM8K rationales, and the held-back set of issue 9 (GSM8K solutions by
several generators, "A: N" on the last line, "$" as currency, ``<<a*b=c>>`` calculator notes).
"""

import json

import pytest

from prmflow.labelers.outcome.base import find_answer, is_math, math_spans
from prmflow.labelers.outcome.math import MathLabeler
from prmflow.labelers.outcome.numbers import parse_plain_number

HELD_BACK = "Your total will be $140 - $7 = $<<140-7=133>>133.\nA: 133"


@pytest.fixture(scope="module")
def labeler():
    return MathLabeler(in_process=True)


@pytest.mark.parametrize(
    "solution, reference, value, final_answer",
    [
        # held-back set: "A: N" on the last line; "$140 - $" is two prices, not a formula ('140 -' once)
        (HELD_BACK, "133", 1.0, "133"),
        # held-back set: a wrong answer whose stray "$...$" span once equalled the reference (6 FPs)
        ("Your total will be $140 - $7 = $<<140-7=133>>133.\nA: 134", "140", 0.0, "134"),
        ("Jan pays $5+$6=$<<5+6=11>>11 in all.\nA: 11", "11", 1.0, "11"),
        ("Half of 48 is 48/2 = <<48/2=24>>24.\nAnswer: 24", "24", 1.0, "24"),
        ("Half of 48 is 48/2 = <<48/2=24>>24.\nFinal answer: $24", "24", 1.0, "$24"),
        ("Half of 48 is 24.\n\n**Answer**: 24", "24", 1.0, "24"),
        ("Half of 48 is 24.\n\n**Answer:** 24 clips", "24", 1.0, "24 clips"),
        ("A: 1,234", "1234", 1.0, "1,234"),
        # the classic few-shot "A: <reasoning> The answer is N." (Wei et al., chain-of-thought prompting)
        ("A: Roger started with 5 balls. 2 cans of 3 is 6. 5 + 6 = 11. The answer is 11.", "11", 1.0, "11"),
        # the same reasoning with no closing phrase: what the text after "A:" states last
        ("A:\nNatalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 in all.", "72", 1.0, "72"),
        # GSM8K rationale
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72", 1.0, "72"),
        # PRM800K (phase 1, test): "# Answer" then the answer below
        ("So the price of a pencil is 29 cents.\n\n# Answer\n\n29", "29", 1.0, "29"),
        # ProcessBench math-782 (Llama-3-70B): the phrase inside the marker wins
        ("= 11(13) = 143\\).\n\nFinal Answer: The final answer is 143. I hope it is correct.", "143", 1.0, "143"),
        # ProcessBench gsm8k-39 (Qwen2-7B): a marker followed by a sentence
        ("Therefore, John has 180 minutes to nap. Answer: John has 180 minutes to nap.", "180", 1.0, "180"),
        # ProcessBench gsm8k-299 (Qwen2-7B): bold marker, currency in the sentence
        ("Therefore, Verna received $7.00 in change. **Answer:** Verna received $7.00 in change.", "7", 1.0, "$7.00"),
        # ProcessBench gsm8k-91 (Qwen2-7B): the sentence starts with the value, other words follow
        ("Therefore, the answer is \\(52\\) candles and flashlights.", "52", 1.0, "52"),
        # ProcessBench math-289 (Qwen2-7B): the value in bold inside a sentence
        ("Therefore, the answer is that there are **6** such numbers.", "6", 1.0, "6"),
        # ProcessBench math-182 (Llama-3-8B)
        ("Therefore, the maximum number of distinct perfect squares is 6. Final answer: \\boxed{6}", "6", 1.0, "6"),
        # ProcessBench gsm8k-391 (Qwen2-7B)
        ("Therefore, 12 cats were left on the rock. The answer is \\(\\boxed{12}\\).", "12", 1.0, "12"),
        # Qwen2.5 style: a heading, then a display formula
        ("Adding up gives 108.\n\n### Final Answer\n\\[\n\\boxed{108}\n\\]", "108", 1.0, "108"),
        # issue 9, malformed input: Markdown bold is not part of the value
        ("The answer is **42**.", "42", 1.0, "42"),
        # issue 9: Python's power is a power, not 2 followed by noise
        ("The answer is 2**10", "2", 0.0, "2**10"),
        ("The answer is 2**10", "1024", 1.0, "2**10"),
        # no marker (ProcessBench gsm8k-238): the last formula's result, not the "4 weeks" after it
        ("\\[ 14 + 20 = 34 \\text{ hours}\\] So she spends 34 hours in 4 weeks.", "34", 1.0, "34"),
        # no marker (ProcessBench gsm8k-338): an escaped dollar in prose
        ("Therefore, the total cost will be \\$324.", "324", 1.0, "\\$324"),
        # no marker, GSM8K rationale without its "####": the result the last sentence computes,
        # not the "24 liters" after it (GSM8K test, the water and juice problem)
        ("So 9 + 6 = <<9+6=15>>15 liters of water out of the 24 liters.", "15", 1.0, "15"),
        # no marker, "$" as currency all the way (held-back set)
        ("You will pay $140 - $7 = $<<140-7=133>>133.", "133", 1.0, "$133"),
        # MATH500-style LaTeX answers
        ("The answer is $\\frac{14}{3}$.", "\\frac{14}{3}", 1.0, "$\\frac{14}{3}$"),
        ("So the radius is \\(\\boxed{5r^5}\\).", "5r^5", 1.0, "5r^5"),
        ("\\boxed{y = -2x}", "y = -2x", 1.0, "y = -2x"),
        # a unit in words is not a product of variables ("5 cm" is not 5*c*m), a LaTeX unit neither
        ("The answer is 5 cm.", "5\\text{ cm}", 1.0, "5 cm"),
        ("The answer is 6 cm.", "5\\text{ cm}", 0.0, "6 cm"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0, None),
    ],
)
def test_answer_styles(labeler, solution, reference, value, final_answer):
    outcome = labeler.label(solution, reference)
    assert (outcome.value, outcome.status) == (value, "ok"), outcome
    if final_answer is not None:
        assert outcome.final_answer == final_answer


@pytest.mark.parametrize(
    "solution, reference, status",
    [
        # issue 9: a malformed reference is the reference's fault, never a wrong solution
        ("The answer is 1/2", "\\frac{1}{2", "parse_error"),
        ("The answer is 5", "(1, 2", "parse_error"),
        ("The answer is 5", "}{", "parse_error"),
        ("I could not solve it.", "5", "no_answer"),
        ("", "5", "no_answer"),
        ("The answer is 5", None, "no_reference"),
    ],
)
def test_bad_input_is_a_status(labeler, solution, reference, status):
    assert labeler.label(solution, reference).status == status


@pytest.mark.parametrize(
    "text, spans",
    [
        ("you will pay $140 - $7 = $133", []),  # Pandoc: a closing "$" follows a non-space
        ("costs $5+$6=$11", []),  # ... and is not followed by a digit
        ("I have $5 and you have 3$ left", []),  # a "span" of prose is not math
        ("so $x = 2$ and $y$", ["x = 2", "y"]),
        ("price \\$5 and $a+b$", ["a+b"]),
        ("\\(1+1\\) and \\[2\\] and $$3$$", ["1+1", "2", "3"]),
    ],
)
def test_math_spans_tell_currency_from_math(text, spans):
    assert [s[2] for s in math_spans(text)] == spans


@pytest.mark.parametrize("content, expected", [("140 - ", False), ("x = 2", True), ("5 and you have 3", False),
                                               ("20 \\text{ cubic inches}", True), ("a +", False)])
def test_is_math(content, expected):
    assert is_math(content) == expected


def _held_back_like(rows):
    """GSM8K test rationales restated as the held-back set states them, half of them made wrong
    (the final number and the last calculator note changed), in each answer style."""
    styles = [
        lambda n: f"A: {n}", lambda n: f"A: ${n}", lambda n: f"Answer: {n}", lambda n: f"Final answer: {n}",
        lambda n: f"**Answer:** {n}", lambda n: f"The answer is **{n}**.", lambda n: f"A: {n} dollars",
    ]
    for i, r in enumerate(rows):
        body, ref = r["answer"].split("####")
        ref, body = ref.strip(), body.rstrip()
        for j, style in enumerate(styles):
            right = (i + j) % 2 == 0
            value = ref if right else str(int(ref.replace(",", "")) + 1 + j)
            lines = body.split("\n")
            if not right:
                lines[-1] = lines[-1].replace(f">>{ref}", f">>{value}")
            yield "\n".join(lines) + "\n" + style(value), ref, right


def test_held_back_like_set_agrees_everywhere(shared_data, labeler):
    """Acceptance (issue 9 asks >= 99.8% on the held-back set): 1,319 GSM8K rationales x 7 styles."""
    rows = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl")]
    items = list(_held_back_like(rows))
    outcomes = [(labeler.label(text, ref), text, ref, right) for text, ref, right in items]
    disagree = [(text[-80:], ref) for o, text, ref, right in outcomes if (o.value == 1.0) != right]
    assert (len(items), disagree[:5]) == (7 * 1319, [])
    # and the answer shown is the number stated, never a fragment of prose between two "$"
    fragments = [o.final_answer for o, *_ in outcomes if parse_plain_number(o.final_answer) is None]
    assert fragments == []


def test_math500_solutions_agree_with_their_own_answers(shared_data, labeler):
    """The 500 MATH500 reference solutions (\\boxed answers) against their ``answer`` field."""
    rows = [json.loads(line) for line in open(shared_data / "math500" / "test.jsonl")]
    disagree = [r["unique_id"] for r in rows if labeler.label(r["solution"], r["answer"]).value != 1.0]
    assert (len(rows), disagree) == (500, [])


def test_find_answer_says_how():
    assert find_answer(HELD_BACK).how == "marker"
    assert find_answer("So she pays 2 + 3 = 5 dollars in all.").how == "last-result"
    assert find_answer("nothing here").how == "none"


@pytest.mark.parametrize(
    "solution",
    ["A:\n" * 50_000, "$1x " * 100_000, "$" * 200_000, "The answer is " * 50_000, "**" * 100_000,
     "Answer:\n" * 30_000, "<<" * 100_000 + ">>"],
)
def test_adversarial_text_gets_a_verdict(labeler, solution):
    """Extraction runs in-process, outside the time limit: it must stay linear and never recurse
    once per marker (50,000 "A:" lines once meant 50,000 nested calls)."""
    assert labeler.label(solution, "5").status in ("ok", "no_answer")
