"""A newcomer's own JSONL as it is: common shapes recognised without a ``fields`` mapping, plain and
integer GSM8K answers, a one-line ``fields:`` suggestion for a row in no known shape, the row's own
id kept (``problems.source_id``), and ``import_solutions`` off by default when a run samples."""

from __future__ import annotations

import json

import pytest

from prmflow.config import InputConfig, parse_config
from prmflow.sources import BadRecord, iter_raw_records, parse_raw


def parse_rows(tmp_path, rows, fmt="jsonl", **kw):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = InputConfig(path=str(path), format=fmt, **kw)
    out = []
    with open(path, "rb") as f:
        for raw in iter_raw_records(f, str(path), fmt, 1 << 20):
            try:
                out.append(parse_raw(raw, spec))
            except BadRecord as e:
                out.append(e)
    return out


def test_question_answer_with_hashes_is_recognised(tmp_path):
    [parsed] = parse_rows(tmp_path, [{"id": "wp-1", "question": "Q?", "answer": "3 + 5 = 8\n#### 8"}])
    p = parsed.problem
    assert (p.prompt, p.reference_answer, p.source_id) == ("Q?", "8", "wp-1")
    assert p.demonstration_steps == ("3 + 5 = 8", "#### 8")
    [draft] = parsed.drafts  # a pure import keeps the reference rationale as a solution
    assert (draft.origin, draft.gold_outcome, draft.gold_first_error) == ("demonstration", 1.0, -1)


@pytest.mark.parametrize("answer", [8, "8", " 8 "])
def test_plain_and_integer_answers(tmp_path, answer):
    for fmt in ("jsonl", "gsm8k"):
        [parsed] = parse_rows(tmp_path, [{"question": "Q?", "answer": answer, "uid": 17}], fmt)
        assert (parsed.problem.reference_answer, parsed.problem.source_id, parsed.drafts) == ("8", "17", ())


def test_problem_solution_answer(tmp_path):
    [parsed] = parse_rows(tmp_path, [{"problem": "P?", "solution": "a\nb", "answer": "2", "unique_id": "u"}])
    p = parsed.problem
    assert (p.prompt, p.reference_answer, p.demonstration, p.source_id) == ("P?", "2", "a\nb", "u")
    assert parsed.drafts[0].text == "a\nb"


def test_a_row_in_no_known_shape_gets_a_fields_suggestion(tmp_path):
    [err] = parse_rows(tmp_path, [{"text": "what is 2+2?", "gold": "4"}])
    assert err.reason == "missing_field"
    assert "try format: jsonl with fields: {prompt: text}" in err.detail and "'gold'" in err.detail
    [err] = parse_rows(tmp_path, [{"problem": "P?", "solution": "s", "answer": "2"}], "gsm8k")
    assert err.reason == "missing_field" and "field 'question' is missing" in err.detail
    assert "fields: {prompt: problem, reference_answer: answer, solution: solution}" in err.detail
    assert "\n" not in err.detail


@pytest.mark.parametrize("answer", ["first\nthen 8", "no final answer marker", "the total is " + "9" * 40])
def test_a_rationale_without_final_answer_is_refused(tmp_path, answer):
    [err] = parse_rows(tmp_path, [{"question": "Q?", "answer": answer}], "gsm8k")
    assert err.reason == "bad_value" and "no '#### N' final answer" in err.detail


@pytest.mark.parametrize("answer, reference", [("$1,200", "$1,200"), ("x = 3", "x = 3"), ("yes", "yes"), (-4, "-4")])
def test_plain_answers_that_are_one_short_line(tmp_path, answer, reference):
    [parsed] = parse_rows(tmp_path, [{"question": "Q?", "answer": answer}], "gsm8k")
    assert parsed.problem.reference_answer == reference


BASE = {"name": "t", "inputs": [{"format": "jsonl", "path": "x.jsonl"}]}


def test_import_solutions_is_off_when_the_run_samples():
    assert parse_config(BASE).inputs[0].import_solutions is True  # a pure import
    sampling = {**BASE, "sampler": {"backend": "fake", "model": "fake"}}
    assert parse_config(sampling).inputs[0].import_solutions is False
    assert parse_config({**sampling, "sampling": {"n": 0}}).inputs[0].import_solutions is True  # rollouts only
    explicit = {**sampling, "inputs": [{**BASE["inputs"][0], "import_solutions": True}]}
    assert parse_config(explicit).inputs[0].import_solutions is True
