"""The outcome labeler interface and answer extraction shared by all of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "no_answer", "no_reference", "parse_error", "timeout", "error"]


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


_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|=|:)\s*[:\s]*(.+?)\s*(?:\.\s*$|\.\s+|\n|$)",
    re.IGNORECASE,
)


def extract_answer(text: str) -> tuple[str | None, str]:
    r"""The stated final answer and how it was found: boxed, hashes (GSM8K ``#### N``), answer-is, none.

    The last occurrence wins: a solution that revises its answer means the revision.
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    hashes = _HASHES.findall(text)
    if hashes:
        return hashes[-1].strip(), "hashes"
    found = _ANSWER_IS.findall(text)
    if found:
        return found[-1].strip().rstrip(".").strip(), "answer-is"
    return None, "none"


_MATH_SEGMENTS = re.compile(r"\\\[(.+?)\\\]|\\\((.+?)\\\)|\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$", re.DOTALL)


def last_math_result(text: str) -> str | None:
    r"""The result of the last formula in the text: after its last "=" if it has one, else itself.

    Solutions without an answer marker usually end in a computation (``\[ 20 \times 2 = 40 \]``)
    followed by prose that may mention other numbers ("... in 4 weeks").
    """
    found = _MATH_SEGMENTS.findall(text)
    if not found:
        return None
    formula = next(g for g in found[-1] if g)
    rhs = formula.rsplit("=", 1)[-1].strip()
    return rhs or None


def unescape_currency(s: str) -> str:
    r"""Drop escaped ``\$`` and ``\%``; ``\15`` is ``\$15`` with the "$" lost (ProcessBench gsm8k-329)."""
    s = s.replace("\\$", "").replace("\\%", "")
    return re.sub(r"\\(?=\d)", "", s)


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
