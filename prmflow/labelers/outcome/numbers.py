r"""Plain numbers judged without sympy: the fast path of the ``math`` labeler.

Most answers to GSM8K-style problems are plain numbers ("72", "$1,234.50", "18 dollars", "3/4",
"25%"). Handing them to Math-Verify costs a LaTeX parse and a sympy comparison per verdict, about a
millisecond; comparing two ``Fraction`` values costs a microsecond. ``numbers_equal`` reproduces
Math-Verify's own verdict on these forms (``math_verify.grader.sympy_expr_eq``, v0.9, sympy 1.14),
quirks included, so the fast path never changes a verdict, it only skips sympy; a differential
test checks it against Math-Verify pair by pair.

Anything outside this grammar (LaTeX beyond ``\frac{a}{b}``, expressions, several numbers, a
rounding tie, more digits than a sympy Float keeps) gives None and goes to Math-Verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Kind = Literal["int", "decimal", "fraction"]

# A sympy Float parsed from text keeps 15 significant digits; past that, its rounding is not ours.
_MAX_DECIMAL_DIGITS = 15

_NUMBER = r"""
    (?P<neg>-)?
    (?:
        \\[dt]?frac\{(?P<fnum>\d{1,12})\}\{(?P<fden>\d{1,12})\}
      | (?P<num>\d{1,12})/(?P<den>\d{1,12})
      | (?P<int>\d{1,3}(?:,(?:\\!)?\d{3})+|\d+)(?:\.(?P<dec>\d+))?  # 32,\!348 is LaTeX for 32,348
    )
"""
# Currency and percent signs, a trailing unit made of words of two letters or more ("dollars",
# "cm"); one-letter words are left to Math-Verify, they may be variables ("3 x").
_PLAIN = re.compile(
    rf"""^\s*
    (?P<cur>\\?\$)?\s*
    {_NUMBER}
    \s*(?P<pct>\\?%)?
    (?P<unit>(?:\s+[A-Za-z]{{2,}})*)
    \s*\.?\s*$""",
    re.VERBOSE,
)
# Math delimiters around the whole answer: $...$, \(...\), \[...\], \boxed{...}.
_WRAPPERS = (
    re.compile(r"^\s*\$(?!\$)(.*)(?<!\\)\$\s*\.?\s*$", re.DOTALL),
    re.compile(r"^\s*\\\((.*)\\\)\s*\.?\s*$", re.DOTALL),
    re.compile(r"^\s*\\\[(.*)\\\]\s*\.?\s*$", re.DOTALL),
    re.compile(r"^\s*\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}\s*\.?\s*$", re.DOTALL),
)


@dataclass(frozen=True)
class PlainNumber:
    value: Fraction
    """The number as written, before any percent sign is applied."""
    kind: Kind
    """int, decimal (a sympy Float to Math-Verify) or fraction ("a/b", kept unevaluated by
    Math-Verify, or a ``\\frac`` that is not an integer)."""
    percent: bool
    """Written with "%" (Math-Verify's percentage); a LaTeX ``\\%`` is dropped, as Math-Verify does."""
    text: str
    """Sign and digits as written, without separators: what Math-Verify compares as strings."""

    @property
    def scaled(self) -> Fraction:
        return self.value / 100 if self.percent else self.value


def _unwrap(s: str) -> str:
    for pattern in _WRAPPERS:
        m = pattern.match(s)
        if m:
            return m.group(1)
    return s


def parse_plain_number(s: str) -> PlainNumber | None:
    """``s`` as a plain number, or None when it is anything else (then Math-Verify decides)."""
    if len(s) > 200:
        return None
    m = _PLAIN.match(_unwrap(s))
    if m is None:
        return None
    sign = -1 if m["neg"] else 1
    if m["cur"] and m["cur"].startswith("$") and m["pct"]:
        return None  # "$5%" means nothing we can vouch for
    percent = m["pct"] == "%"
    if m["fnum"] is not None or m["num"] is not None:
        num, den = (m["fnum"], m["fden"]) if m["fnum"] is not None else (m["num"], m["den"])
        if int(den) == 0 or percent:
            return None
        value = sign * Fraction(int(num), int(den))
        # Math-Verify evaluates \frac{4}{2} to the Integer 2 but keeps "4/2" as an unevaluated division.
        is_int = value.denominator == 1 and m["fnum"] is not None
        text = f"{m['neg'] or ''}{num}/{den}" if m["num"] is not None else str(value)
        return PlainNumber(value, "int" if is_int else "fraction", False, text)
    digits = m["int"].replace(",", "").replace("\\!", "")
    if m["dec"] is not None:
        if len(digits.lstrip("0")) + len(m["dec"]) > _MAX_DECIMAL_DIGITS:
            return None
        value = sign * Fraction(f"{digits}.{m['dec']}")
        return PlainNumber(value, "decimal", percent, f"{m['neg'] or ''}{digits}.{m['dec']}")
    return PlainNumber(sign * Fraction(int(digits)), "int", percent, f"{m['neg'] or ''}{digits}")


def _rounded(x: Fraction, places: int) -> Fraction | None:
    """x rounded to ``places`` decimals, or None near a tie, where sympy's binary Float may round
    the other way."""
    scaled = x * 10**places
    floor = scaled.numerator // scaled.denominator
    frac = scaled - floor
    if abs(frac - Fraction(1, 2)) < Fraction(1, 10**6):
        return None
    return Fraction(floor + (1 if frac > Fraction(1, 2) else 0), 10**places)


def numbers_equal(gold: PlainNumber, pred: PlainNumber, float_rounding: int = 6) -> bool | None:
    """Math-Verify's verdict on two plain numbers, or None where it can't be reproduced exactly.

    Math-Verify says equal when any of these holds: the extracted strings are equal; the values are
    equal once evaluated (its symbolic check, percent applied); two integers are equal ignoring
    percent signs; or, with a decimal on either side, both round to the same ``float_rounding``
    places, which sympy can only do when neither side evaluates to an Integer (``Integer.round``
    stays an Integer, never equal to a Float).
    """
    if gold.text == pred.text or gold.scaled == pred.scaled:
        return True
    if gold.kind == "int" and pred.kind == "int":
        return gold.value == pred.value
    if gold.kind != "decimal" and pred.kind != "decimal":
        return False
    if any(n.kind != "decimal" and n.scaled.denominator == 1 for n in (gold, pred)):
        return False
    if max(abs(gold.scaled), abs(pred.scaled)) >= 10**9:
        return None  # the rounded Floats would need more digits than their 53-bit precision holds
    a, b = _rounded(gold.scaled, float_rounding), _rounded(pred.scaled, float_rounding)
    if a is None or b is None:
        return None
    return a == b
