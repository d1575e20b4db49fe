"""Adapters for the public data sets: GSM8K, MATH500, ProcessBench, PRM800K.

Each is one ``parse(obj, raw, spec) -> Parsed`` function that raises BadRecord for malformed rows.
"""

from __future__ import annotations

import re
from typing import Any

from prmflow.ids import content_id
from prmflow.schemas import Problem
from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, _describe, field_value, string_list

_CALCULATOR_NOTE = re.compile(r"<<[^<>]*>>")
_DIGIT = re.compile(r"\d")
PLAIN_ANSWER_CHARS = 40
"""A plain answer (no ``#### N``) is one line this long at most, holding a digit or a single word: "8",
"$1,200", "x = 3", "yes". A sentence without a number is a rationale missing its final answer."""


ID_KEYS = ("id", "problem_id", "question_id", "unique_id", "uid", "idx")
"""Where a row keeps its own id, tried in this order (``Problem.source_id``)."""


def row_id(obj: Any, path: str | None = None) -> str | None:
    """The row's own id as text: the field at ``path``, else the first of ID_KEYS it has; None when
    it has none (or the value is not a string or an integer)."""
    keys = (path,) if path else ID_KEYS
    for key in keys:
        value = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def make_problem(spec, raw: RawRecord, prompt: str, obj: Any = None, **kw: Any) -> Problem:
    return Problem(
        problem_id=content_id(spec.source_name, prompt),
        source_id=kw.pop("source_id", None) or row_id(obj),
        source=spec.source_name,
        domain=kw.pop("domain", None) or spec.domain_name,
        prompt=prompt,
        source_file=raw.source_file,
        source_index=raw.location,
        **kw,
    )


def gold_from_first_error(first_error: int, n_steps: int, where: str) -> tuple[float | None, ...]:
    """Steps before the first error are right, it is wrong, later ones are unknown (-1: all right)."""
    if not -1 <= first_error < n_steps:
        raise BadRecord("index_out_of_range", f"{where} = {first_error} is outside [-1, {n_steps - 1}] for {n_steps} steps")
    if first_error == -1:
        return (1.0,) * n_steps
    return (1.0,) * first_error + (0.0,) + (None,) * (n_steps - first_error - 1)


PROMPT_KEYS = ("question", "problem", "prompt", "query", "input", "instruction")
ANSWER_KEYS = ("answer", "final_answer", "reference_answer", "ground_truth", "target", "expected_answer")
SOLUTION_KEYS = ("solution", "rationale", "reasoning", "response", "completion")
STEPS_KEYS = ("steps",)


def suggest_fields(obj: Any) -> str:
    """A one-line ``fields:`` mapping for a row of unknown shape, from the keys it has."""
    keys = list(obj) if isinstance(obj, dict) else []
    pick = {
        "prompt": next((k for k in PROMPT_KEYS if k in keys), None),
        "reference_answer": next((k for k in ANSWER_KEYS if k in keys), None),
        "solution": next((k for k in SOLUTION_KEYS if k in keys), None),
        "steps": next((k for k in STEPS_KEYS if k in keys), None),
        "id": next((k for k in ID_KEYS if k in keys), None),
    }
    shown = ", ".join(repr(k) for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
    if pick["prompt"] is None:
        text_keys = [k for k in keys if isinstance(obj[k], str)]
        pick["prompt"] = text_keys[0] if text_keys else "FIELD"
    if pick["steps"] and pick["solution"]:
        pick["steps"] = None
    mapping = ", ".join(f"{k}: {v}" for k, v in pick.items() if v)
    return f"the row's keys are [{shown}]; try format: jsonl with fields: {{{mapping}}}"


def final_answer(text: str, where: str) -> tuple[str, tuple[str, ...] | None]:
    """An answer field as (reference, rationale steps): GSM8K's "rationale #### N" gives N and the
    rationale's lines (calculator notes removed, the ``#### N`` line last); a plain answer ("8", an
    integer, see PLAIN_ANSWER_CHARS) is the reference alone."""
    if "####" in text:
        reference = text.rsplit("####", 1)[1].strip().replace(",", "")
        if not reference:
            raise BadRecord("bad_value", f"field {where!r} has an empty '####' final answer")
        lines = [_CALCULATOR_NOTE.sub("", ln).strip() for ln in text.splitlines()]
        return reference, tuple(ln for ln in lines if ln)
    plain = text.strip()
    if "\n" in plain or len(plain) > PLAIN_ANSWER_CHARS or not (_DIGIT.search(plain) or " " not in plain):
        raise BadRecord("bad_value", f"field {where!r} has no '#### N' final answer and is not a plain answer (a "
                                     f"number, or one short line with one); a rationale maps with fields: {{solution: ...}}")
    return plain, None


def parse_gsm8k(obj: dict, raw: RawRecord, spec) -> Parsed:
    """GSM8K: the answer's ``#### N`` is the reference; its rationale lines, calculator notes removed,
    are the demonstration (one step per line, ending with the ``#### N`` line). A plain answer
    (``"answer": 8`` or ``"8"``) is the reference, with no demonstration."""
    if "question" not in obj:
        raise BadRecord("missing_field", f"field 'question' is missing; {suggest_fields(obj)}")
    question = field_value(obj, "question", str)
    reference, steps = final_answer(field_value(obj, "answer", str), "answer")
    if steps is None:
        return Parsed(make_problem(spec, raw, question, obj, reference_answer=reference), ())
    demonstration = "\n".join(steps)
    problem = make_problem(spec, raw, question, obj, reference_answer=reference, demonstration=demonstration,
                           demonstration_steps=steps)
    drafts = (Draft(steps=steps, origin="demonstration", generator="gsm8k-reference", gold_outcome=1.0, gold_first_error=-1),)
    return Parsed(problem, drafts if spec.import_solutions else ())


def parse_natural(obj: dict, raw: RawRecord, spec) -> Parsed:
    """A JSONL/JSON/Parquet row with no ``fields`` mapping, in a common shape: the prompt under
    question/problem/prompt, the answer under answer/final_answer/... (GSM8K's ``#### N`` or plain),
    a solution under solution/rationale/... or the answer's own rationale, and the row's id. A row
    in no known shape is dead-lettered with a one-line ``fields:`` suggestion."""
    prompt_key = next((k for k in PROMPT_KEYS if k in obj), None)
    if prompt_key is None:
        raise BadRecord("missing_field", f"no problem text (none of {', '.join(PROMPT_KEYS)}); {suggest_fields(obj)}")
    prompt = field_value(obj, prompt_key, str)
    answer_key = next((k for k in ANSWER_KEYS if k in obj), None)
    reference, rationale = (None, None) if answer_key is None else final_answer(
        field_value(obj, answer_key, str), answer_key)
    solution_key = next((k for k in SOLUTION_KEYS if k in obj), None)
    solution = field_value(obj, solution_key, str, required=False) if solution_key else None
    demonstration = solution if solution is not None else ("\n".join(rationale) if rationale else None)
    problem = make_problem(spec, raw, prompt, obj, reference_answer=reference, demonstration=demonstration,
                           demonstration_steps=rationale if solution is None else None)
    if not spec.import_solutions or demonstration is None:
        return Parsed(problem, ())
    gold = 1.0 if reference is not None else None  # a reference solution: right by the source's word
    draft = (Draft(text=solution, origin="demonstration", generator=f"{spec.source_name}-reference", gold_outcome=gold)
             if solution is not None else
             Draft(steps=rationale, origin="demonstration", generator=f"{spec.source_name}-reference", gold_outcome=gold,
                   gold_first_error=-1))
    return Parsed(problem, (draft,))


def parse_math500(obj: dict, raw: RawRecord, spec) -> Parsed:
    """MATH500: ``answer`` is the reference; the prose ``solution`` is the demonstration."""
    problem_text = field_value(obj, "problem", str)
    answer = field_value(obj, "answer", str)
    solution = field_value(obj, "solution", str, required=False)
    meta = {k: obj[k] for k in ("subject", "level", "unique_id") if k in obj}
    problem = make_problem(spec, raw, problem_text, obj, reference_answer=answer, demonstration=solution,
                           metadata=meta or None)
    drafts = ()
    if solution and spec.import_solutions:
        drafts = (Draft(text=solution, origin="demonstration", generator="math-reference", gold_outcome=1.0),)
    return Parsed(problem, drafts)


def parse_processbench(obj: dict, raw: RawRecord, spec) -> Parsed:
    """ProcessBench: steps, the experts' earliest wrong step (``label``, -1 = none) and
    ``final_answer_correct``, which can be true while label >= 0 (wrong process, right answer)."""
    problem_text = field_value(obj, "problem", str)
    steps = string_list(obj, "steps")
    label = field_value(obj, "label", int)
    correct = field_value(obj, "final_answer_correct", bool)
    gold = gold_from_first_error(label, len(steps), "label")
    problem = make_problem(spec, raw, problem_text, obj)
    draft = Draft(
        steps=steps,
        generator=field_value(obj, "generator", str, required=False),
        gold_outcome=1.0 if correct else 0.0,
        gold_first_error=label,
        gold_step_labels=gold,
        metadata={"id": obj["id"]} if isinstance(obj.get("id"), str) else None,
    )
    return Parsed(problem, (draft,) if spec.import_solutions else ())


# PRM800K ratings: +1 good, 0 neutral (okay but not progress), -1 wrong (the PRM800K paper, Sec. 2.2).
_RATING_GOLD = {1: 1.0, 0: 0.5, -1: 0.0}


def parse_prm800k(obj: dict, raw: RawRecord, spec) -> Parsed:
    """PRM800K (phases 1 and 2). The trajectory is the chain of chosen completions: per step the
    chosen one, else the human-written one (unrated: gold null), else, when the labeler stopped
    with ``found_error``, the first completion rated -1 (the step that was wrong), and it ends there.
    Gold outcome: 1 for finish_reason ``solution``, 0 for ``found_error``, null otherwise."""
    problem_text = field_value(obj, "question.problem", str)
    reference = field_value(obj, "question.ground_truth_answer", str, required=False)
    label_steps = field_value(obj, "label.steps", list)
    finish = field_value(obj, "label.finish_reason", str, required=False)
    steps: list[str] = []
    gold: list[float | None] = []
    for i, step in enumerate(label_steps):
        if not isinstance(step, dict):
            raise BadRecord("wrong_type", f"label.steps[{i}] must be an object, got {type(step).__name__}")
        completions = step.get("completions") or []
        if not isinstance(completions, list):
            raise BadRecord("wrong_type", f"label.steps[{i}].completions must be a list")
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        for j, c in enumerate(completions):
            if not isinstance(c, dict):
                raise BadRecord("wrong_type", f"label.steps[{i}].completions[{j}] must be an object, got {_describe(c)}")
            if "rating" in c:
                _check_rating(c["rating"], f"label.steps[{i}].completions[{j}].rating")
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            if not 0 <= chosen < len(completions):
                raise BadRecord("index_out_of_range", f"label.steps[{i}].chosen_completion = {chosen} but there are {len(completions)} completions")
            pick, rating = completions[chosen], completions[chosen].get("rating")
        elif isinstance(human, dict):
            pick, rating = human, None
        else:
            wrong = [c for c in completions if c.get("rating") == -1]
            if finish == "found_error" and wrong:
                pick, rating = wrong[0], -1
            else:
                break
        text = pick.get("text") if isinstance(pick, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise BadRecord("empty_steps", f"label.steps[{i}] has no completion text")
        steps.append(text)
        gold.append(_RATING_GOLD.get(rating) if rating is not None else None)
        if rating == -1:
            break
    if not steps:
        raise BadRecord("empty_steps", "label.steps yields no chosen completion")
    first_error = next((i for i, g in enumerate(gold) if g == 0.0), None)
    if first_error is None:
        first_error = -1 if finish == "solution" else None
    gold_outcome = {"solution": 1.0, "found_error": 0.0}.get(finish or "")
    ratings = [_rating_of(s) for s in label_steps if isinstance(s, dict)]
    problem = make_problem(spec, raw, problem_text, reference_answer=reference)
    draft = Draft(
        steps=tuple(steps),
        generator=f"prm800k-generation-{obj.get('generation')}",
        gold_outcome=gold_outcome,
        gold_first_error=first_error,
        gold_step_labels=tuple(gold),
        metadata={"finish_reason": finish, "labeler": obj.get("labeler"), "ratings": ratings},
    )
    return Parsed(problem, (draft,) if spec.import_solutions else ())


def _check_rating(rating: Any, where: str) -> None:
    """A rating is -1, 0, 1 or null; anything else (a list, a string, 2) would be read as no rating."""
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or rating not in _RATING_GOLD):
        raise BadRecord("bad_value", f"{where} must be -1, 0, 1 or null, got {_describe(rating)}")


def _rating_of(step: dict) -> list[int | None]:
    return [c.get("rating") for c in step.get("completions") or [] if isinstance(c, dict)]
