"""The plain-number fast path: its grammar, and its verdicts against Math-Verify's, pair by pair."""

import itertools
import json
import logging
import random
from fractions import Fraction

import pytest

from prmflow.labelers.outcome.numbers import numbers_equal, parse_plain_number


@pytest.mark.parametrize(
    "text, value, kind, percent",
    [
        ("72", Fraction(72), "int", False),
        ("$1,234.50", Fraction(246_9, 2), "decimal", False),
        ("\\$18", Fraction(18), "int", False),
        ("18 dollars.", Fraction(18), "int", False),
        ("-3/4", Fraction(-3, 4), "fraction", False),
        ("\\frac{4}{2}", Fraction(2), "int", False),  # Math-Verify evaluates it to the Integer 2
        ("4/2", Fraction(2), "fraction", False),  # ... but keeps "4/2" an unevaluated division
        ("$\\dfrac{1}{3}$", Fraction(1, 3), "fraction", False),
        ("25%", Fraction(25), "int", True),
        ("25\\%", Fraction(25), "int", False),  # Math-Verify drops a LaTeX percent
        ("\\$32,\\!348", Fraction(32348), "int", False),  # MATH500 test/algebra/2626
    ],
)
def test_plain_numbers(text, value, kind, percent):
    n = parse_plain_number(text)
    assert (n.value, n.kind, n.percent) == (value, kind, percent)


@pytest.mark.parametrize(
    "text",
    ["2**10", "1,5", "12,34", "3 x", "4 hours and 30 minutes", "1/0", "x", "1.5e3", "1 1/2", "-$5",
     "0.1234567890123456", "\\frac{1}{2", "$5%", ""],
)
def test_not_plain_numbers_go_to_math_verify(text):
    assert parse_plain_number(text) is None


def _forms(rng: random.Random) -> str:
    v = rng.choice([rng.randrange(50), rng.randrange(100_000), rng.randrange(10**7)])
    return rng.choice([
        str(v), f"{v:,}", f"${v}", f"{v} dollars", f"-{v}",
        f"{v / rng.choice([1, 2, 3, 4, 7, 8, 1000, 10**6]):.{rng.randrange(1, 9)}f}",
        f"{rng.randrange(1, 30)}/{rng.randrange(1, 30)}", f"\\frac{{{rng.randrange(1, 30)}}}{{{rng.randrange(1, 30)}}}",
        f"{rng.randrange(200)}%", f"{rng.randrange(2000) / rng.choice([10, 100, 4]):g}%",
    ])


def _pairs():
    rng = random.Random(9)
    fixed = ["18", "18.0", "18.00", "$18", "1,234", "1234", "0.5", "1/2", "\\frac{1}{2}", "50%", "50.0%", "0.50",
             "0.333333", "1/3", "0.3333333", "25%", "0.25", "100%", "1", "1.0000001", "0.0000001", "0", "0.0",
             "6/3", "2", "\\frac{4}{2}", "2.0", "-0", "$32,\\!348$", "32348"]
    yield from itertools.product(fixed, fixed)
    for _ in range(400):
        a = _forms(rng)
        n = parse_plain_number(a)
        if n is not None and rng.random() < 0.5:
            x = float(n.scaled)  # a near or equal value in another form
            yield a, rng.choice([f"{x:.{rng.randrange(9)}f}", f"{x * 100:g}%", str(int(x)), f"{x + 1e-7:.8f}"])
        else:
            yield a, _forms(rng)


def test_fast_path_verdicts_equal_math_verify():
    """Differential: wherever the fast path gives a verdict, Math-Verify gives the same one."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    compared, differ = 0, []
    for gold, pred in _pairs():
        g, p = parse_plain_number(gold), parse_plain_number(pred)
        ours = numbers_equal(g, p) if g is not None and p is not None else None
        if ours is None:
            continue
        pg, pp = parse(gold, parsing_timeout=None), parse(pred, parsing_timeout=None)
        if not pg or not pp:  # Math-Verify can't read it bare ("\\$18"); no verdict to compare with
            continue
        compared += 1
        if verify(pg, pp, timeout_seconds=None) != ours:
            differ.append((gold, pred, ours))
    assert compared > 700 and differ == []


def test_gsm8k_references_are_all_plain(shared_data):
    rows = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl")]
    assert all(parse_plain_number(r["answer"].split("####")[-1]) is not None for r in rows)
