"""Generic JSONL / JSON / Parquet rows, mapped onto prmflow fields by ``inputs[].fields``."""

from __future__ import annotations

from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, field_value, number_list, string_list
from prmflow.sources.datasets import gold_from_first_error, make_problem, parse_natural, row_id


def parse_generic(obj: dict, raw: RawRecord, spec) -> Parsed:
    """Without ``fields``, a row in a common shape (:func:`parse_natural`). ``fields`` maps prmflow names to dotted paths: prompt (required), reference_answer, solution
    (text, segmented later) or steps (a list), demonstration, rubric, tests (a code test program), generator, domain, gold_outcome
    (bool or number), gold_first_error (int, -1 = none), gold_step_labels (list of numbers),
    step_scores (an external PRM's per-step scores, e.g. from the last self-training round)."""
    if not spec.fields:
        return parse_natural(obj, raw, spec)
    f = spec.fields

    def get(name: str, kind: type):
        path = f.get(name)
        return None if path is None else field_value(obj, path, kind, required=False)

    prompt = field_value(obj, f["prompt"], str)
    reference = get("reference_answer", str)
    solution = get("solution", str)
    steps = string_list(obj, f["steps"], required=False) if "steps" in f else None
    gold_outcome = None
    if "gold_outcome" in f:
        value = field_value(obj, f["gold_outcome"], object, required=False)
        if value is not None:
            if isinstance(value, bool):
                gold_outcome = 1.0 if value else 0.0
            elif isinstance(value, (int, float)) and 0 <= value <= 1:  # NaN fails the comparison
                gold_outcome = float(value)
            else:
                raise BadRecord("bad_value", f"field {f['gold_outcome']!r} must be a boolean or a number in [0, 1], got {value!r}")
    gold_labels = number_list(obj, f["gold_step_labels"]) if "gold_step_labels" in f else None
    step_scores = number_list(obj, f["step_scores"]) if "step_scores" in f else None
    first_error = get("gold_first_error", int)
    problem = make_problem(
        spec, raw, prompt,
        domain=get("domain", str),
        reference_answer=reference,
        demonstration=get("demonstration", str),
        rubric=get("rubric", str),
        tests=get("tests", str),
        metadata={"id": str(obj[f["id"]])} if "id" in f and f["id"] in obj else None,
        source_id=row_id(obj, f["id"]) if "id" in f else None,
        obj=obj,
    )
    if not spec.import_solutions or (solution is None and steps is None):
        return Parsed(problem, ())
    if steps is not None:
        n = len(steps)
        if first_error is not None and gold_labels is None:
            gold_labels = gold_from_first_error(first_error, n, f["gold_first_error"])
        elif first_error is not None and not -1 <= first_error < n:
            raise BadRecord("index_out_of_range", f"field {f['gold_first_error']!r} = {first_error} is outside [-1, {n - 1}]")
        if gold_labels is not None and len(gold_labels) != n:
            raise BadRecord("bad_value", f"field {f['gold_step_labels']!r} has {len(gold_labels)} labels for {n} steps")
        if step_scores is not None and len(step_scores) != n:
            raise BadRecord("bad_value", f"field {f['step_scores']!r} has {len(step_scores)} scores for {n} steps")
    draft = Draft(
        text=solution if steps is None else None,
        steps=steps,
        generator=get("generator", str),
        gold_outcome=gold_outcome,
        gold_first_error=first_error,
        gold_step_labels=gold_labels,
        step_scores=step_scores,
    )
    return Parsed(problem, (draft,))
