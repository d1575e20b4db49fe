import json

from prmflow.config import InputConfig
from prmflow.sources import BadRecord, iter_raw_records, parse_raw


def parse_file(path, fmt, **kw):
    spec = InputConfig(path=str(path), format=fmt, **kw)
    ok, bad = [], []
    with open(path, "rb") as f:
        for raw in iter_raw_records(f, str(path), fmt, 1 << 20):
            try:
                ok.append(parse_raw(raw, spec))
            except BadRecord as e:
                bad.append(e.reason)
    return ok, bad


def test_gsm8k_reference_and_demonstration(shared_data):
    ok, bad = parse_file(shared_data / "gsm8k" / "test.jsonl", "gsm8k")
    assert (len(ok), bad) == (1319, [])
    first = ok[0].problem
    assert first.reference_answer == "18"
    assert "<<" not in first.demonstration and ">>" not in first.demonstration
    assert first.demonstration_steps[-1] == "#### 18"
    assert first.demonstration.splitlines() == list(first.demonstration_steps)
    draft = ok[0].drafts[0]
    assert (draft.origin, draft.gold_outcome, draft.gold_first_error) == ("demonstration", 1.0, -1)


def test_gsm8k_without_solutions(shared_data):
    ok, _ = parse_file(shared_data / "gsm8k" / "test.jsonl", "gsm8k", import_solutions=False)
    assert all(not p.drafts for p in ok)


def test_math500(shared_data):
    ok, bad = parse_file(shared_data / "math500" / "test.jsonl", "math500")
    assert (len(ok), bad) == (500, [])
    assert all(p.problem.reference_answer for p in ok)
    assert json.loads(json.dumps(ok[0].problem.metadata))["unique_id"].startswith("test/")


def test_processbench_gold(shared_data):
    ok, bad = parse_file(shared_data / "processbench" / "gsm8k.json", "processbench")
    raw = json.load(open(shared_data / "processbench" / "gsm8k.json"))
    assert (len(ok), bad) == (400, [])
    for parsed, row in zip(ok, raw, strict=False):
        d = parsed.drafts[0]
        assert list(d.steps) == row["steps"]
        assert d.gold_first_error == row["label"]
        assert d.gold_outcome == (1.0 if row["final_answer_correct"] else 0.0)
        if row["label"] >= 0:
            assert d.gold_step_labels[row["label"]] == 0.0
            assert set(d.gold_step_labels[: row["label"]]) <= {1.0}


def test_prm800k_phase2_found_error(shared_data):
    ok, bad = parse_file(shared_data / "prm800k_examples" / "prm800k-phase2-train-example.json", "prm800k")
    assert (len(ok), bad) == (1, [])
    d = ok[0].drafts[0]
    # six chosen steps (one neutral), then the first -1-rated completion ends the trajectory
    assert d.gold_step_labels == (1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.0)
    assert (d.gold_first_error, d.gold_outcome) == (6, 0.0)
    assert ok[0].problem.reference_answer


def test_prm800k_phase1_human_completion_is_unrated(shared_data):
    ok, _ = parse_file(shared_data / "prm800k_examples" / "prm800k-phase1-train-example.json", "prm800k")
    assert len(ok) == 3
    first = ok[0].drafts[0]
    # step 1 was written by the human labeler (no rating) after five rejected completions
    assert first.gold_step_labels[1] is None
    assert first.gold_outcome == 1.0 and first.gold_first_error == -1


def test_generic_jsonl_mapping(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"q": {"text": "2+2?"}, "a": 4, "s": ["2+2 = 4", "The answer is 4"], "fe": -1}) + "\n")
    ok, bad = parse_file(path, "jsonl", fields={"prompt": "q.text", "reference_answer": "a", "steps": "s", "gold_first_error": "fe"})
    assert bad == []
    assert ok[0].problem.reference_answer == "4"
    assert ok[0].drafts[0].gold_step_labels == (1.0, 1.0)


def test_generic_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"question": ["1+1?", "2+2?"], "answer": ["2", "4"], "solution": ["1+1 = 2\nThe answer is 2", "x"]}), path)
    ok, bad = parse_file(path, "parquet", fields={"prompt": "question", "reference_answer": "answer", "solution": "solution"})
    assert (len(ok), bad) == (2, [])
    assert ok[0].drafts[0].text == "1+1 = 2\nThe answer is 2"


def test_json_concatenated_objects_with_trailing_garbage(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('{"problem": "a", "steps": ["x"], "label": -1, "final_answer_correct": true}\n{"problem": oops')
    ok, bad = parse_file(path, "processbench")
    assert len(ok) == 1 and bad == ["bad_json"]
