"""The outcome labeler interface and answer extraction shared by all of them."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "no_answer", "no_reference", "parse_error", "timeout", "crash", "sandbox_error", "error"]


@dataclass(frozen=True)
class Outcome:
    """A verdict on one solution. A failure to judge is a value here, never an exception."""

    value: float | None
    """1.0 right, 0.0 wrong, in between for partial credit; None when it could not be judged."""
    source: str
    """The labeler that produced it (math, exact, numeric, ...)."""
    status: Status = "ok"
    """ok, or why there is no verdict (no_reference, parse_error, timeout, error) or why it is 0
    (no_answer: the solution states no answer, which counts as wrong)."""
    final_answer: str | None = None
    """The answer as extracted from the solution."""
    detail: str | None = None
    """A sentence for a human when status is not ok."""
    clean_value: float | None = None
    """The verdict before a noisy channel (``outcome.noise``) changed it into ``value``; None when no
    channel is configured."""


class OutcomeLabeler(Protocol):
    name: str

    def label(self, solution: str, reference: str | None) -> Outcome: ...

    def close(self) -> None: ...


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``), with nested braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0 or text[start:i].strip() not in ("\\boxed", "\\fbox"):
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


# --- what is prose, what is math -------------------------------------------------------------------

_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|operatorname|mbox)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
# Two words in a row (not LaTeX commands, not single-letter variables) make a sentence.
_TWO_WORDS = re.compile(r"(?<![A-Za-z\\])[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}(?![A-Za-z])")


def is_prose(s: str) -> bool:
    """True when ``s`` reads as a sentence rather than a value: two words in a row outside
    ``\\text{}`` ("she pays", "dollars per hour"), while "18 dollars" and "x = 5" are values."""
    s = _COMMAND.sub(" ", _TEXT_COMMANDS.sub(" ", s))
    return bool(_TWO_WORDS.search(s))


_TRAILING_OPERATOR = re.compile(r"(?:[-+*/=×÷^_]|\\times|\\cdot|\\div)\s*$")


def is_math(content: str) -> bool:
    """Whether the inside of a ``$...$`` span is a formula, not the prose between two prices."""
    content = content.strip()
    return bool(content) and not is_prose(content) and not _TRAILING_OPERATOR.search(content)


def math_spans(text: str) -> list[tuple[int, int, str]]:
    r"""(start, end, content) of each formula: ``\[..\]``, ``\(..\)``, ``$$..$$`` and ``$..$``.

    In model prose "$" is more often currency than math ("you will pay $140 - $7 = $133"), so a
    single dollar opens a formula only by Pandoc's rule for ``tex_math_dollars``: the opening "$"
    has a non-space character right after it, the closing one a non-space character right before
    it and no digit right after it; and its content must read as math (``is_math``). Any other
    "$" is a currency sign.
    """
    spans: list[tuple[int, int, str]] = []
    closers = [m.start() for m in _DOLLAR_CLOSER.finditer(text)]
    n, i = len(text), 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            closer = {"[": "\\]", "(": "\\)"}.get(text[i + 1])
            if closer is not None:
                j = text.find(closer, i + 2)
                if j >= 0:
                    spans.append((i, j + 2, text[i + 2 : j]))
                    i = j + 2
                    continue
            i += 2  # an escaped character (``\$`` is a dollar sign) or a command
            continue
        if c != "$":
            i += 1
            continue
        if text.startswith("$$", i):
            j = text.find("$$", i + 2)
            if j >= 0:
                spans.append((i, j + 2, text[i + 2 : j]))
                i = j + 2
                continue
            i += 2
            continue
        j = _dollar_closer(text, i, closers)
        if j is not None and is_math(text[i + 1 : j]):
            spans.append((i, j + 1, text[i + 1 : j]))
            i = j + 1
        else:
            i += 1
    return spans


_MAX_INLINE_MATH = 1000  # characters: a "formula" longer than this is prose between two prices


# A "$" that may close a formula: a non-space (and not a backslash) before it, no digit after it.
_DOLLAR_CLOSER = re.compile(r"(?<=[^\s\\])\$(?!\d)")


def _dollar_closer(text: str, i: int, closers: list[int]) -> int | None:
    if i + 1 >= len(text) or text[i + 1].isspace():
        return None
    k = bisect.bisect_right(closers, i + 1)  # not i + 1 itself: "$$" is not an empty formula
    if k == len(closers):
        return None
    j = closers[k]
    if j - i > _MAX_INLINE_MATH or text.find("\n\n", i, j) >= 0:
        return None
    return j


_TRAILING_UNIT = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm)\s*\{[^{}]*\}\s*$")


def formula_result(formula: str) -> str | None:
    r"""What a formula states last: after its last "=" or "\approx", without a unit in ``\text{}``
    (``\text{Volume} = 20 \times 2 = 40 \text{ cubic inches}`` gives 40)."""
    rhs = re.split(r"=|\\approx|≈", formula)[-1].strip()
    return _TRAILING_UNIT.sub("", rhs).strip() or None


def last_math_result(text: str) -> str | None:
    r"""The result of the last formula in the text (see ``math_spans`` for what is a formula)."""
    spans = math_spans(text)
    return formula_result(spans[-1][2]) if spans else None


# --- answer markers --------------------------------------------------------------------------------

_HASHES = re.compile(r"####[ \t]*([^\n]*)")
# "A: 72", "Answer: 72", "**Answer:** 72", "**Final Answer**: 72", "### Final Answer" (then the
# answer on the lines below), at the start of a line. "A" is case-sensitive: "a:" starts list items.
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_-]*(?:(?i:final[ \t]+answer|answer)[ \t]*(?:\*\*|__)?[ \t]*(?::|：|(?=(?:\*\*|__)?[ \t]*$))"
    r"|A[ \t]*:)[ \t]*(?:\*\*|__)?[ \t]*(?P<rest>[^\n]*)$",
    re.MULTILINE,
)
# "the answer is 18", "The final answer is: 18", "so the answer: 18", inside a sentence; the answer
# runs to the end of the sentence.
_ANSWER_IS = re.compile(r"(?i:\banswer[ \t]+(?:is|would[ \t]+be|will[ \t]+be)\b|\banswer[ \t]*[:=])[ \t]*:?[ \t]*")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n|$")
_BOLD = re.compile(r"^(\*\*|__)(.+?)\1$", re.DOTALL)
_INNER_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_CALCULATOR_NOTE = re.compile(r"<<[^<>\n]*>>")


def _tidy(answer: str) -> str:
    """The answer without sentence punctuation or a Markdown bold around it ("**42**." is 42)."""
    answer = answer.strip().rstrip(".").strip()
    m = _BOLD.match(answer)
    return m.group(2).strip() if m else answer


def _first_quantity(s: str) -> str | None:
    """The value a sentence starts with: "the answer is \\(52\\) candles" -> 52."""
    spans = math_spans(s)
    bold = _INNER_BOLD.search(s)
    number = _QUANTITY.search(s)
    found = [(start, formula_result(content)) for start, _, content in spans[:1]]
    found += [(bold.start(), bold.group(1))] if bold else []
    found += [(number.start(), number.group(0))] if number else []
    found = [f for f in found if f[1]]
    return min(found)[1] if found else None


def extract_answer(text: str) -> tuple[str | None, str]:
    r"""The stated final answer and the marker it was found by: boxed, hashes (GSM8K ``#### N``),
    marker (a line "A:", "Answer:", "Final answer:", "**Answer**"), answer-is ("the answer is N"),
    or none.

    ``\boxed`` wins over ``####``, which wins over the written markers; among those the last one
    wins: a solution that revises its answer means the revision. After a marker followed by prose
    ("Answer: John has 180 minutes to nap.") the answer is the quantity the prose states.
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    hashes = [h for h in _HASHES.findall(text) if h.strip()]
    if hashes:
        return _tidy(hashes[-1]), "hashes"
    line = _last(_ANSWER_LINE.finditer(text))
    phrase = _last(_ANSWER_IS.finditer(text))
    # "Final Answer: The final answer is 143." is the phrase's: whichever starts last.
    if line is not None and (phrase is None or line.start("rest") > phrase.start()):
        return _after_marker(text, line.start("rest"), line["rest"]), "marker"
    if phrase is not None:
        end = _SENTENCE_END.search(text, phrase.end())
        rest = _tidy(text[phrase.end() : end.start() if end else len(text)])
        if not rest:
            return _unmarked(text[phrase.end() :]).answer, "answer-is"
        if is_prose(rest):
            return _first_quantity(rest), "answer-is"
        return rest, "answer-is"
    return None, "none"


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    found = None
    for found in matches:  # noqa: B007 - the last one is the point
        pass
    return found


def _after_marker(text: str, at: int, rest: str) -> str | None:
    rest = _tidy(rest)
    if rest and not is_prose(rest):
        return rest
    # "A:" then the worked solution, "### Final Answer" then the answer below, or "Answer: she pays
    # $7": what the text from here on states (it has no marker: this one was the last).
    return _unmarked(text[at:]).answer


_QUANTITY_TEXT = (
    r"(?:\\?\$[ \t]?)?(?<![\w)\]}])-?(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?:[ \t]?\\?%)?"
)
_QUANTITY = re.compile(_QUANTITY_TEXT)
# "= 15" is a result; "= 15 * 2" and "= 2x + 3" are not.
_RESULT = re.compile(rf"=[ \t]*({_QUANTITY_TEXT})(?!,?\d)(?![A-Za-z(])(?![ \t]*(?:[-+*×÷^]|/[ \t]*\d))")


@dataclass(frozen=True)
class Stated:
    """A solution's final answer as found by ``find_answer``."""

    answer: str | None
    """The answer text (a formula's result, not the whole formula); None when nothing is stated."""
    how: str
    """boxed, hashes, marker, answer-is, formula, last-line, last-number or none."""
    formula: str | None = None
    """The whole formula the answer is the result of (``how == "formula"``), for a grader that
    compares equations as equations."""


_SENTENCE_SPLIT = re.compile(r"\.\s+(?=\S)|\n+")


def find_answer(text: str) -> Stated:
    r"""The final answer of a solution: its marked answer (``extract_answer``), else the last
    quantity it states. That is the result of its last formula (``\[ 14 + 20 = 34 \text{ hours}\]
    So she spends 34 hours in 4 weeks`` states 34), unless a last line that is itself a value
    follows it; else the last number of the prose, GSM8K calculator notes (``<<140-7=133>>``)
    left out.
    """
    answer, how = extract_answer(text)
    if how != "none":
        return Stated(answer, how)
    return _unmarked(text)


def _unmarked(text: str) -> Stated:
    """The last quantity a text without answer markers states (see ``find_answer``)."""
    text = _CALCULATOR_NOTE.sub("", text).strip()
    if not text:
        return Stated(None, "none")
    spans = math_spans(text)
    last_line_at = text.rfind("\n") + 1
    last_line = _tidy(text[last_line_at:])
    line_is_value = bool(last_line) and not is_prose(last_line) and len(last_line) <= 200
    if spans and not (line_is_value and last_line_at >= spans[-1][1]):
        result = formula_result(spans[-1][2])
        if result:
            return Stated(result, "formula", spans[-1][2].strip())
    # The last sentence states the answer, often with context after it ("= 15 liters of water out
    # of the 24 liters", "Female:9(2/3)=6 unicorns"): a result it computes ("= 15") beats the
    # numbers that follow.
    sentence = _SENTENCE_SPLIT.split(text)[-1]
    results = _RESULT.findall(sentence)
    if results:
        return Stated(results[-1].strip(), "last-result")
    if line_is_value:
        return Stated(last_line, "last-line")
    numbers = _QUANTITY.findall(sentence) or _QUANTITY.findall(text)
    if numbers:
        return Stated(numbers[-1].strip(), "last-number")
    return Stated(None, "none")


def stated_quantity(text: str) -> tuple[str | None, str]:
    """``find_answer`` as (answer, how)."""
    found = find_answer(text)
    return found.answer, found.how


def unescape_currency(s: str) -> str:
    r"""Drop escaped ``\$`` and ``\%``; ``\15`` is ``\$15`` with the "$" lost (ProcessBench gsm8k-329)."""
    s = s.replace("\\$", "").replace("\\%", "")
    return re.sub(r"(?<!\\)\\(?=\d)", "", s)


def clean_number_text(s: str) -> str:
    """Drop what decorates a number in prose: $, %, thousands commas, trailing period."""
    s = unescape_currency(s).strip().strip("$").strip()
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    return s.rstrip(".").strip()


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def first_number(s: str) -> float | None:
    m = _NUMBER.search(clean_number_text(s))
    if not m:
        return None
    tok = m.group(0)
    if "/" in tok:
        a, b = tok.split("/")
        return float(a) / float(b) if float(b) else None
    return float(tok)
