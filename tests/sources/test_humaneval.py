"""The HumanEval adapter: problems with self-contained tests, the canonical solution one line a step."""

from __future__ import annotations

import gzip
import json

import pytest

from prmflow.config import InputConfig
from prmflow.labelers.outcome.code import build_program, parse_tests
from prmflow.sources import ADAPTERS, BadRecord, RawRecord, parse_raw, read_file

PATH = "humaneval/HumanEval.jsonl.gz"


def _rows(shared_data):
    with gzip.open(shared_data / PATH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _raw(obj, i=1):
    return RawRecord("HumanEval.jsonl", i, json.dumps(obj), value=obj)


def test_registered():
    assert "humaneval" in ADAPTERS


def test_every_row_parses_from_the_gzip_file(shared_data):
    spec = InputConfig(format="humaneval", path=str(shared_data / PATH))
    path = shared_data / PATH
    parsed = [parse_raw(r, spec) for r in read_file(lambda: open(path, "rb"), str(path), "humaneval", 1 << 20)
              if isinstance(r, RawRecord)]
    assert len(parsed) == 164
    rows = _rows(shared_data)
    for p, row in zip(parsed, rows, strict=True):
        problem = p.problem
        assert problem.domain == "code" and problem.prompt == row["prompt"] and problem.reference_answer is None
        assert problem.metadata == {"task_id": row["task_id"], "entry_point": row["entry_point"]}
        tests = parse_tests(problem.tests)
        assert (tests.prelude, tests.entry_point) == (row["prompt"], row["entry_point"])
        assert tests.test.startswith(row["test"].rstrip()) and tests.test.endswith(f"check({row['entry_point']})\n")
        (draft,) = p.drafts
        assert draft.origin == "demonstration" and draft.gold_outcome == 1.0 and draft.gold_first_error == -1
        # One step per non-blank line, indentation kept: the steps joined are the runnable body.
        assert all(s.strip() and s == s.rstrip() for s in draft.steps)
        assert "\n".join(draft.steps).split() == row["canonical_solution"].split()
        assert build_program("\n".join(draft.steps), tests).startswith(row["prompt"])


def test_without_solutions(shared_data):
    row = _rows(shared_data)[0]
    spec = InputConfig(format="humaneval", path="x.jsonl", import_solutions=False)
    parsed = ADAPTERS["humaneval"](row, _raw(row), spec)
    assert parsed.drafts == () and parsed.problem.demonstration_steps


@pytest.mark.parametrize("change,reason,detail", [
    ({"prompt": None}, "missing_field", "'prompt' is null"),
    ({"test": ["assert 1"]}, "wrong_type", "'test' must be a string"),
    ({"entry_point": "has space"}, "bad_value", "must be a Python identifier"),
    ({"entry_point": "other_name"}, "bad_value", "does not define the entry point 'other_name'"),
    ({"test": "assert True\n"}, "bad_value", "defines no check(candidate)"),
    ({"task_id": ""}, "empty_field", "'task_id' is empty"),
])
def test_bad_rows(shared_data, change, reason, detail):
    row = {**_rows(shared_data)[0], **change}
    spec = InputConfig(format="humaneval", path="x.jsonl")
    with pytest.raises(BadRecord) as e:
        ADAPTERS["humaneval"](row, _raw(row), spec)
    assert e.value.reason == reason and detail in e.value.detail


def test_missing_canonical_solution_is_a_problem_without_drafts(shared_data):
    row = {k: v for k, v in _rows(shared_data)[1].items() if k != "canonical_solution"}
    parsed = ADAPTERS["humaneval"](row, _raw(row), InputConfig(format="humaneval", path="x.jsonl"))
    assert parsed.drafts == () and parsed.problem.demonstration is None and parsed.problem.tests
