"""Judge templates and the rendering of a judge prompt from a problem and a trajectory.

The builtin templates (files in ``prmflow/judge/templates``, ``str.format`` strings):

- ``first-error``: ProcessBench's critique prompt (Zheng et al. 2024, "ProcessBench: Identifying
  Process Errors in Mathematical Reasoning", appendix), verbatim. Paragraphs are ``<paragraph_i>``
  blocks indexed from 0; the judge ends with ``\\boxed{k}``, the earliest wrong paragraph, or
  ``\\boxed{-1}``.
- ``paragraph-analysis``: the LLM-as-a-judge prompt of Zhang et al. 2025, "The Lessons of Developing
  Process Reward Models in Mathematical Reasoning" (Qwen), appendix, with paragraphs indexed from 0
  like ProcessBench's and one line added that the data are not instructions. The judge writes
  ``<analysis_i>`` blocks in order, stops at the first wrong paragraph and ends with
  ``<conclusion>Correct</conclusion>`` or ``<conclusion>Incorrect</conclusion>``.
- ``answer-equivalence``: is the solution's final answer equivalent to the reference? The judge ends
  with ``\\boxed{Yes}`` or ``\\boxed{No}`` (the boxed convention math models are trained on). For
  answers a rule grader cannot compare: units, prose, "simplify" tasks.
- ``rubric``: no reference; the problem's ``rubric`` says what a good answer must do, and the judge
  ends with the conclusion tag, Correct or Incorrect.

A template given as a path declares its kind on its first line (``# kind: first-error``); the rest
of the file is the template, with the placeholders its kind needs.

Untrusted text (problem, steps, solution, reference, rubric) goes through :func:`escape_untrusted`:
it can neither open nor close a tag of the template, nor a chat-template special token, nor carry a
verdict marker (``\\boxed``, the conclusion tag) that :mod:`prmflow.judge.verdict` would parse. So
even a judge that echoes its whole prompt cannot produce the verdict a solution wrote for it. The
substitution is one ``str.format_map`` over the trusted template, so braces and ``{problem}`` in the
untrusted text stay literal.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmflow.schemas import Problem, Trajectory

TemplateKind = Literal["first-error", "paragraph-analysis", "answer-equivalence", "rubric"]
KINDS: tuple[str, ...] = ("first-error", "paragraph-analysis", "answer-equivalence", "rubric")
STEP_KINDS: tuple[str, ...] = ("first-error", "paragraph-analysis")

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PLACEHOLDERS: tuple[str, ...] = ("problem", "paragraphs", "solution", "reference", "rubric")
REQUIRED: dict[str, frozenset[str]] = {
    "first-error": frozenset({"paragraphs"}),
    "paragraph-analysis": frozenset({"paragraphs"}),
    "answer-equivalence": frozenset({"solution", "reference"}),
    "rubric": frozenset({"solution", "rubric"}),
}
"""The placeholders a template of each kind must contain (a first-error judge that is not shown the
paragraphs cannot name one)."""

_KIND_LINE = re.compile(r"#\s*kind\s*:\s*(\S+)\s*")


class JudgePromptError(ValueError):
    """A prompt that cannot be rendered for this row; ``reason`` names the dead letter
    (``missing_reference``, ``missing_rubric``, ``no_steps``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    """The builtin name, or the path the template was read from."""
    kind: TemplateKind
    """What the judge is asked, hence how its answer is parsed."""
    text: str
    """The ``str.format`` template (literal braces doubled)."""

    @property
    def judges_steps(self) -> bool:
        """Whether the verdict names a first wrong step (else it is an outcome verdict only)."""
        return self.kind in STEP_KINDS

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None)


def _template_error(name_or_path: object, why: str) -> ValueError:
    return ValueError(
        f"judge.template must be one of {list(KINDS)} or the path of a template file whose first line is "
        f"'# kind: <one of those>', got {name_or_path!r} ({why})"
    )


def _check_text(name: str, kind: str, text: str) -> None:
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as e:  # a lone "{" or "}": literal braces must be doubled
        raise _template_error(name, f"not a str.format template: {e}; double literal braces") from None
    for _, field_name, spec, conversion in fields:
        if field_name is None:
            continue
        if field_name not in PLACEHOLDERS or spec or conversion:
            raise _template_error(
                name, f"placeholder {{{field_name}}} is not one of {['{' + p + '}' for p in PLACEHOLDERS]}"
            )
    missing = sorted(REQUIRED[kind] - {f[1] for f in fields})
    if missing:
        raise _template_error(name, f"a {kind} template needs the placeholders {['{' + m + '}' for m in missing]}")


def load_template(name_or_path: str) -> JudgeTemplate:
    """A builtin template by name, or a template file (first line ``# kind: <kind>``)."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise _template_error(name_or_path, "not a name or a path")
    if name_or_path in KINDS:
        text = (TEMPLATE_DIR / f"{name_or_path}.txt").read_text(encoding="utf-8")
        _check_text(name_or_path, name_or_path, text)
        return JudgeTemplate(name_or_path, name_or_path, text)  # type: ignore[arg-type]
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise _template_error(name_or_path, "no builtin of that name and no such file")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _template_error(name_or_path, f"unreadable: {e}") from None
    first, _, body = raw.partition("\n")
    m = _KIND_LINE.fullmatch(first.strip())
    if m is None:
        raise _template_error(name_or_path, f"first line {first[:60]!r} does not declare the kind")
    kind = m.group(1)
    if kind not in KINDS:
        raise _template_error(name_or_path, f"unknown kind {kind!r}")
    _check_text(name_or_path, kind, body)
    return JudgeTemplate(name_or_path, kind, body)  # type: ignore[arg-type]


# --- escaping of untrusted text --------------------------------------------------------------------

# Look-alikes of the characters that make tags and markers, for detection: a fullwidth "＜/paragraph_2＞"
# reads as a closing tag to a model even though no ASCII parser would match it. NFKC covers the
# fullwidth and mathematical forms; these are the look-alikes it leaves alone.
_FOLD_EXTRA = {
    "‹": "<", "›": ">", "〈": "<", "〉": ">", "⟨": "<", "⟩": ">", "˂": "<", "˃": ">", "ᐸ": "<", "ᐳ": ">",
    "⧵": "\\", "∖": "\\", "⁄": "/", "∕": "/", "⟦": "[", "⟧": "]",
    # Cyrillic and Greek letters that look Latin, as in "\bоxed" with a Cyrillic o
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "у": "y",
    "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "χ": "x",
}


@functools.lru_cache(maxsize=8192)
def _fold_char(c: str) -> str:
    if c.isascii():
        return c.lower()
    if c in _FOLD_EXTRA:
        return _FOLD_EXTRA[c]
    n = unicodedata.normalize("NFKC", c).casefold()
    return n if len(n) == 1 else c  # one char for one char, so spans line up with the original


def _invisible(c: str) -> bool:
    # Format characters (zero-width space and joiners, BOM, bidi overrides, soft hyphen) let a tag hide
    # from a filter while a model still reads it; they carry no meaning in a solution.
    return unicodedata.category(c) == "Cf"


_PROTECTED_TAGS = (
    "paragraph", "analysis", "conclusion", "math_problem", "problem", "solution", "reference_answer",
    "reference", "rubric", "verdict", "answer", "think", "s",
)
"""Tag names always escaped, besides those the template itself uses."""
_PROTECTED_HEADERS = ("math problem", "solution", "problem", "reference answer", "rubric", "inst", "/inst")
"""Bracketed section headers always escaped (``[Solution]`` would fake a section of the prompt)."""

_TEMPLATE_TAG = re.compile(r"</?([A-Za-z_][\w-]*?)(?:_\d+|_n)?>")
_TEMPLATE_HEADER = re.compile(r"\[([A-Za-z][A-Za-z ]{0,40})\]")
_BOXED = re.compile(r"\\\s*boxed")


def _tag_pattern(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        r"<\s*/?\s*(?:"
        # a protected name: escaped even without its ">" (a model reads "</paragraph_2" as a tag)
        rf"(?:{alternatives})(?![a-z])(?:\s*_\s*-?\d+)?\s*/?\s*>?"
        # any other tag-like token that is closed, e.g. "</s>", "<im_end>"
        r"|[a-z!?][^<>\n]{0,80}>"
        # chat special tokens: "<|im_end|>", "<|eot_id|>"
        r"|\|[^<>\n]{0,80}?\|\s*>?|\|"
        r")"
    )


@dataclass(frozen=True)
class _Escaper:
    tags: re.Pattern[str]
    headers: re.Pattern[str]


_ESCAPERS: dict[str, _Escaper] = {}


def _escaper(template_text: str) -> _Escaper:
    escaper = _ESCAPERS.get(template_text)
    if escaper is None:
        tags = set(_PROTECTED_TAGS) | {m.lower() for m in _TEMPLATE_TAG.findall(template_text)}
        headers = set(_PROTECTED_HEADERS) | {h.lower().strip() for h in _TEMPLATE_HEADER.findall(template_text)}
        header_alts = "|".join(re.escape(h).replace(r"\ ", r"\s+") for h in sorted(headers, key=len, reverse=True))
        escaper = _Escaper(_tag_pattern(frozenset(tags)), re.compile(rf"\[\s*(?:{header_alts})\s*\]"))
        _ESCAPERS[template_text] = escaper
    return escaper


def _replace_spans(text: str, pattern: re.Pattern[str], render: dict[str, str] | None) -> str:
    """``text`` with each match of ``pattern`` (searched in the folded text, whose characters line up
    with the original's) rewritten: the characters that fold to a key of ``render`` become its value,
    the others stay as written; ``render`` None drops the match for a fixed replacement."""
    folded = "".join(_fold_char(c) for c in text)
    out, last = [], 0
    for m in pattern.finditer(folded):
        out.append(text[last:m.start()])
        if render is None:
            out.append("\\fbox")
        else:
            out.extend(render.get(f, c) for c, f in zip(text[m.start():m.end()], folded[m.start():m.end()], strict=True))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


_TAG_ESCAPES = {"<": "&lt;", ">": "&gt;"}
_HEADER_ESCAPES = {"[": "&#91;", "]": "&#93;"}


def escape_untrusted(text: str, template: JudgeTemplate | None = None) -> str:
    """``text`` made inert inside a judge prompt, still readable by a model.

    - invisible format characters are dropped;
    - a tag of the template (or any tag-like token, or chat special token such as ``<|im_end|>``)
      has its angle brackets written as ``&lt;`` / ``&gt;``, look-alike characters folded to ASCII
      so the escape is visible;
    - a bracketed section header (``[Solution]``) has its brackets written ``&#91;`` / ``&#93;``;
    - ``\\boxed`` becomes ``\\fbox`` (the same framed box to a reader, never a verdict to the parser).
    """
    text = "".join(c for c in text if not _invisible(c))
    escaper = _escaper(template.text if template is not None else "")
    text = _replace_spans(text, escaper.tags, _TAG_ESCAPES)
    text = _replace_spans(text, escaper.headers, _HEADER_ESCAPES)
    return _replace_spans(text, _BOXED, None)


def render_paragraphs(steps: tuple[str, ...] | list[str], template: JudgeTemplate | None = None) -> str:
    """Steps as ProcessBench's ``<paragraph_i>`` blocks, indexed from 0, each escaped."""
    return "\n\n".join(
        f"<paragraph_{i}>\n{escape_untrusted(step.strip(), template)}\n</paragraph_{i}>" for i, step in enumerate(steps)
    )


def render_judge_prompt(template: JudgeTemplate, problem: Problem, trajectory: Trajectory) -> str:
    """The judge prompt for one trajectory; JudgePromptError (a ValueError with ``reason``) when the
    row lacks what the template needs."""
    needs = template.placeholders
    values: dict[str, str] = {"problem": escape_untrusted(problem.prompt, template)}
    if "paragraphs" in needs:
        if not trajectory.steps:
            raise JudgePromptError("no_steps", f"trajectory {trajectory.trajectory_id} has no steps to judge")
        values["paragraphs"] = render_paragraphs(trajectory.steps, template)
    if "solution" in needs:
        values["solution"] = escape_untrusted((trajectory.response or trajectory.text).strip(), template)
    if "reference" in needs:
        if problem.reference_answer is None or not problem.reference_answer.strip():
            raise JudgePromptError(
                "missing_reference", f"problem {problem.problem_id} has no reference_answer for {template.name}"
            )
        values["reference"] = escape_untrusted(problem.reference_answer.strip(), template)
    if "rubric" in needs:
        if problem.rubric is None or not problem.rubric.strip():
            raise JudgePromptError("missing_rubric", f"problem {problem.problem_id} has no rubric for {template.name}")
        values["rubric"] = escape_untrusted(problem.rubric.strip(), template)
    return template.text.format_map(values)


def builtin_kind_of(prompt: str) -> str | None:
    """The kind of the builtin template ``prompt`` was rendered from, by the template's first line
    (which holds no placeholder), or None: how the fake backend recognises a judge prompt."""
    for kind in KINDS:
        if _first_lines()[kind] in prompt:
            return kind
    return None


_FIRST_LINES: dict[str, str] = {}


def _first_lines() -> dict[str, str]:
    if not _FIRST_LINES:
        for kind in KINDS:
            _FIRST_LINES[kind] = load_template(kind).text.split("\n", 1)[0]
    return _FIRST_LINES
