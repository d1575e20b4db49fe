"""Judge verdicts: strict parsing of one generated answer, plurality over K votes, consensus with
Monte-Carlo labels.

Parsing reads the judge's generated text only, never the prompt, and never repairs: an index
outside [-1, n_steps) is unparsed, not clamped, and the LAST verdict marker decides even when it is
malformed (a judge that corrects itself at the end meant the end; falling back to an earlier marker
would pick an answer it withdrew). A reasoning judge's ``<think>`` part is not its answer: with a
``</think>`` only the text after the last one is read, and a thinking part that never closes
(truncated) is unparsed.

Formats, per template kind:

- first-error: the last ``\\boxed{...}`` holds an integer k in [-1, n_steps): k = -1 means no error.
  Whitespace, ``$...$``, one redundant ``{...}`` group and one ``\\text{}``-like wrapper are
  allowed around it (``\\boxed{ -1 }``, ``\\boxed{\\text{2}}``); ``2.0``, ``two``, ``paragraph 2`` are not.
- paragraph-analysis: the last ``<conclusion>`` block holds Correct or Incorrect (any case, an
  optional final period). The template makes the judge stop its analyses at the first wrong
  paragraph (Zhang et al. 2025, "The Lessons of Developing PRMs", appendix), so for Incorrect the
  first error is the index of the last ``<analysis_k>`` opened before the conclusion; Incorrect with
  no analysis is unparsed (``no_first_error``). Correct means first error -1.
- answer-equivalence: the last ``\\boxed{...}`` holds Yes or No (same wrappers as above).
- rubric: the last ``<conclusion>`` block holds Correct or Incorrect.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from prmflow.judge.prompt import JudgeTemplate


@dataclass(frozen=True)
class Vote:
    """One judge sample, parsed."""

    first_error: int | None
    """Index of the first wrong step, -1 for none; None when unparsed or for outcome templates."""
    correct: bool | None
    """The outcome verdict; None when unparsed."""
    parsed: bool
    """Whether the sample held a well-formed verdict."""
    reason: str | None = None
    """Why it is unparsed: no_verdict, unclosed, empty, not_an_integer, out_of_range, malformed,
    no_first_error, unfinished_thinking."""


def _unparsed(reason: str) -> Vote:
    return Vote(None, None, False, reason)


_BOXED = re.compile(r"\\boxed\s*\{")
_CONCLUSION_OPEN = re.compile(r"<\s*conclusion\s*>", re.IGNORECASE)
_CONCLUSION_CLOSE = re.compile(r"<\s*/\s*conclusion\s*>", re.IGNORECASE)
_ANALYSIS_OPEN = re.compile(r"<\s*analysis_(\d+)\s*>", re.IGNORECASE)
_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{(.*)\}", re.DOTALL)
_INTEGER = re.compile(r"[+-]?\d+")
_OUTCOME_WORDS = {"correct": True, "incorrect": False}
_YES_NO = {"yes": True, "no": False}


def answer_part(generated: str) -> str | None:
    """The part of a judge's output that holds its answer: after the last ``</think>``; None when
    a thinking part never closed."""
    close = generated.rfind("</think>")
    if close >= 0:
        return generated[close + len("</think>"):]
    if "<think>" in generated:
        return None
    return generated


def _braced(text: str, start: int) -> str | None:
    """The content of the brace group whose "{" is at ``start - 1``, or None when it never closes."""
    depth, i = 1, start
    while i < len(text):
        c = text[i]
        if c == "\\":  # an escaped character, such as \{, is never a group brace
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def _unwrap(content: str) -> str:
    """A boxed content without the decoration models put around a plain answer."""
    value = content.strip()
    for _ in range(3):  # e.g. "$\text{ 2 }$": a few layers at most, never a loop on junk
        before = value
        if len(value) >= 2 and value[0] == "$" and value[-1] == "$":
            value = value.strip("$").strip()
        m = _WRAPPER.fullmatch(value)
        if m:
            value = m.group(1).strip()
        if value.startswith("{") and _braced(value, 1) == value[1:-1]:
            value = value[1:-1].strip()
        if value == before:
            break
    return value


def _last_boxed(text: str) -> tuple[str | None, str | None]:
    """(content of the last \\boxed, None) or (None, reason)."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None, "no_verdict"
    content = _braced(text, matches[-1].end())
    if content is None:
        return None, "unclosed"
    value = _unwrap(content)
    if not value:
        return None, "empty"
    return value, None


def _last_conclusion(text: str) -> tuple[str | None, int, str | None]:
    """(word of the last conclusion block, where it opens, None) or (None, -1, reason)."""
    opens = list(_CONCLUSION_OPEN.finditer(text))
    if not opens:
        return None, -1, "no_verdict"
    last = opens[-1]
    close = _CONCLUSION_CLOSE.search(text, last.end())
    if close is None:
        return None, -1, "unclosed"
    word = text[last.end():close.start()].strip()
    if word.endswith("."):
        word = word[:-1].rstrip()
    if not word:
        return None, -1, "empty"
    return word, last.start(), None


def parse_vote(template: JudgeTemplate, generated: str, n_steps: int) -> Vote:
    """One judge answer, parsed strictly from the generated text (see the module docstring)."""
    text = answer_part(generated)
    if text is None:
        return _unparsed("unfinished_thinking")
    if template.kind == "first-error":
        value, reason = _last_boxed(text)
        if value is None:
            return _unparsed(reason or "no_verdict")
        if not _INTEGER.fullmatch(value):
            return _unparsed("not_an_integer")
        k = int(value)
        if not -1 <= k < n_steps:
            return _unparsed("out_of_range")
        return Vote(k, k == -1, True)
    if template.kind == "answer-equivalence":
        value, reason = _last_boxed(text)
        if value is None:
            return _unparsed(reason or "no_verdict")
        word = value[:-1].rstrip() if value.endswith(".") else value
        verdict = _YES_NO.get(word.lower())
        if verdict is None:
            return _unparsed("malformed")
        return Vote(None, verdict, True)
    word, at, reason = _last_conclusion(text)
    if word is None:
        return _unparsed(reason or "no_verdict")
    correct = _OUTCOME_WORDS.get(word.lower())
    if correct is None:
        return _unparsed("malformed")
    if template.kind == "rubric":
        return Vote(None, correct, True)
    if correct:
        return Vote(-1, True, True)
    analyses = list(_ANALYSIS_OPEN.finditer(text, 0, at))
    if not analyses:
        return _unparsed("no_first_error")
    k = int(analyses[-1].group(1))
    if not 0 <= k < n_steps:
        return _unparsed("out_of_range")
    return Vote(k, False, True)


@dataclass(frozen=True)
class JudgeVerdict:
    """K votes on one trajectory, aggregated."""

    votes: int
    """K: judge samples asked for (parsed or not)."""
    unparsed: int
    """Samples without a well-formed verdict."""
    agreement: float | None
    """Fraction of ALL K votes equal to the plurality (unparsed votes count against it: a verdict
    that one sample in five could state is not a confident one); None when nothing parsed."""
    first_error: int | None
    """Plurality first error (-1: none); None for outcome templates or when nothing parsed."""
    step_scores: tuple[float, ...] | None
    """Per step, the fraction of parsed votes that put the step before the first error; step
    templates only."""
    outcome: float | None
    """1.0 / 0.0 from the plurality; None when nothing parsed."""


def aggregate_votes(template: JudgeTemplate, votes: Sequence[Vote], n_steps: int) -> JudgeVerdict:
    """Plurality over the parsed votes.

    Ties break toward the pessimistic verdict, deterministically: the earliest first error (-1, "no
    error", counts as after every step) and "incorrect" for outcomes. A split judge has not shown a
    step or a solution to be right, and a false positive label is the costlier mistake in PRM
    training data: Zhang et al. 2025 ("Lessons", §3) trace much of MC-trained PRMs' weakness to
    steps labelled right that are wrong (a wrong step whose completions still reach the right answer).
    """
    parsed = [v for v in votes if v.parsed]
    k, unparsed = len(votes), len(votes) - len(parsed)
    if not parsed:
        return JudgeVerdict(k, unparsed, None, None, None, None)
    if template.judges_steps:
        for v in parsed:
            if v.first_error is None or not -1 <= v.first_error < n_steps:
                raise ValueError(f"a parsed vote's first_error must be in [-1, {n_steps}), got {v.first_error!r}")
        counts = Counter(v.first_error for v in parsed)
        # max count; among equals the earliest step, with -1 ("no error") after every step
        first_error = min(counts, key=lambda e: (-counts[e], n_steps if e == -1 else e))
        scores = tuple(
            sum(1 for v in parsed if v.first_error == -1 or v.first_error > i) / len(parsed) for i in range(n_steps)
        )
        return JudgeVerdict(k, unparsed, counts[first_error] / k, first_error, scores,
                            1.0 if first_error == -1 else 0.0)
    for v in parsed:
        if v.correct is None:
            raise ValueError("a parsed outcome vote must have correct set, got None")
    right = sum(1 for v in parsed if v.correct)
    wrong = len(parsed) - right
    correct = right > wrong  # a tie is "incorrect"
    return JudgeVerdict(k, unparsed, max(right, wrong) / k, None, None, 1.0 if correct else 0.0)


def consensus(judge_first_error: int | None, mc_first_error: int | None) -> tuple[bool | None, str]:
    """Consensus filtering (Zhang et al. 2025, "The Lessons of Developing Process Reward Models in
    Mathematical Reasoning", §3.1.3): a trajectory is kept iff the judge's first error equals the
    Monte-Carlo first error from hard labels (threshold 0), both saying "no error" (-1) included.

    Returns (kept, reason); kept is None when either side has no first error to compare.
    """
    if judge_first_error is None:
        return None, "judge_unparsed"
    if mc_first_error is None:
        return None, "mc_unlabeled"
    if judge_first_error == mc_first_error:
        return True, "agree"
    if judge_first_error == -1:
        return False, "only_mc_found_error"
    if mc_first_error == -1:
        return False, "only_judge_found_error"
    return False, "judge_earlier" if judge_first_error < mc_first_error else "judge_later"
