"""Rows are made safe at the edge (surrogates, depth, non-finite numbers), adapters refuse odd shapes
with a reason, dead letters and the writer cannot fail on what a row holds, and duplicates are one."""

import json

import pyarrow.parquet as pq
import pytest

from prmflow.config import InputConfig
from prmflow.core.dead_letters import DETAIL_CHARS as MAX_DETAIL_CHARS
from prmflow.core.dead_letters import record_dead_letter as dead_letter
from prmflow.schemas import Problem, Trajectory, to_row
from prmflow.schemas.dead_letter import DEAD_LETTER_SCHEMA
from prmflow.sources import BadRecord, RawRecord, parse_raw
from prmflow.sources.base import MAX_DEPTH, clean_value, number_list
from prmflow.sources.duplicates import keep_first_read
from prmflow.transforms.write import write_rows


def parse(obj_or_text, fmt, **kw):
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
    return parse_raw(RawRecord("mem.jsonl", 1, text), InputConfig(path="mem.jsonl", format=fmt, **kw))


def reason_of(obj_or_text, fmt, **kw) -> str | None:
    try:
        parse(obj_or_text, fmt, **kw)
    except BadRecord as e:
        return e.reason
    return None


def test_clean_value_replaces_lone_surrogates_and_counts_them():
    value = json.loads('{"p": "a\\ud800b", "\\udc00": ["x\\udfff\\udfff"], "ok": "\\ud83d\\ude00"}')
    clean, n = clean_value(value)
    assert n == 4
    assert clean == {"p": "a\ufffdb", "\ufffd": ["x\ufffd\ufffd"], "ok": "\U0001f600"}  # a valid pair stays
    json.dumps(clean).encode("utf-8")  # encodable now


def test_clean_value_leaves_clean_rows_alone_and_refuses_depth():
    row = {"a": [{"b": "c"}]}
    assert clean_value(row)[0] is row
    deep = current = []
    for _ in range(MAX_DEPTH):
        current.append([])
        current = current[0]
    with pytest.raises(BadRecord, match="too_deep"):
        clean_value(deep)


@pytest.mark.parametrize("values,reason", [
    ([1, 0.5, None], None),
    ([1, float("nan")], "bad_value"),  # NaN was accepted into gold_step_labels / step_scores
    ([float("inf")], "bad_value"),
    ([10 ** 400], "bad_value"),  # OverflowError in float()
    ([True], "wrong_type"),
    (["0.5"], "wrong_type"),
])
def test_number_list(values, reason):
    try:
        out = number_list({"x": values}, "x")
    except BadRecord as e:
        assert e.reason == reason
    else:
        assert reason is None and out == tuple(None if v is None else float(v) for v in values)


def prm(completions, chosen=0):
    return {"question": {"problem": "p", "ground_truth_answer": "1"},
            "label": {"steps": [{"completions": completions, "human_completion": None, "chosen_completion": chosen}],
                      "finish_reason": "solution"}}


@pytest.mark.parametrize("row,reason", [
    (prm([{"text": "a", "rating": 1}]), None),
    (prm(["a bare string"]), "wrong_type"),  # AttributeError: 'str' object has no attribute 'get'
    (prm([{"text": "a", "rating": [1]}]), "bad_value"),  # TypeError: unhashable type: 'list'
    (prm([{"text": "a", "rating": "1"}]), "bad_value"),  # read as unrated before
    (prm([{"text": "a", "rating": True}]), "bad_value"),
    (prm([{"text": "a", "rating": 1}], chosen=10 ** 400), "index_out_of_range"),
    (prm("not a list"), "wrong_type"),
])
def test_prm800k_shapes(row, reason):
    assert reason_of(row, "prm800k") == reason


FIELDS = {"prompt": "q", "steps": "s", "gold_step_labels": "lab", "step_scores": "sc", "gold_outcome": "ok"}


@pytest.mark.parametrize("text,reason", [
    ('{"q": "x", "s": ["a", "b"], "lab": [1, 0], "sc": [0.5, 0.25]}', None),
    ('{"q": "x", "s": ["a", "b"], "lab": [1, ' + "1" * 400 + "]}", "bad_value"),  # OverflowError
    ('{"q": "x", "s": ["a", "b"], "sc": [NaN, 0.1]}', "bad_value"),
    ('{"q": "x", "s": ["a", "b"], "lab": [Infinity, 1]}', "bad_value"),
    ('{"q": "x", "s": ["a", "b"], "sc": [1e400, 1]}', "bad_value"),  # json reads 1e400 as inf
    ('{"q": "x", "s": ["a", "b"], "ok": NaN}', "bad_value"),
    ('{"q": NaN, "s": ["a"]}', "bad_value"),  # would have become the prompt "nan"
    ('{"q": "x \\ud800", "s": ["a"]}', None),  # replaced, not refused
])
def test_generic_numbers(text, reason):
    assert reason_of(text, "jsonl", fields=FIELDS) == reason


def test_surrogates_never_reach_the_problem():
    parsed = parse('{"q": "x \\ud800", "s": ["b \\udfff"]}', "jsonl", fields=FIELDS)
    assert parsed.problem.prompt == "x \ufffd" and parsed.drafts[0].steps == ("b \ufffd",)


@pytest.mark.parametrize("raw_text,detail", [
    ('{"q": "\\ud800"}', "plain"),
    (json.loads('"a lone \\ud800 surrogate decoded"'), "detail with \ud800 too"),
    ("x" * 200000, "9" * 100000),
])
def test_dead_letters_cannot_fail(tmp_path, raw_text, detail):
    raw = RawRecord("mem.jsonl", 1, raw_text)
    letter = dead_letter("parse", "src", BadRecord("bad_value", detail), raw)
    assert len(letter.detail) <= MAX_DETAIL_CHARS + 40
    letter.raw.encode("utf-8")
    write_rows(str(tmp_path / "d.parquet"), [to_row(letter)], DEAD_LETTER_SCHEMA)
    assert pq.read_table(tmp_path / "d.parquet").num_rows == 1


def test_writer_replaces_surrogates_that_got_through(tmp_path):
    letter = dead_letter("parse", "src", BadRecord("bad_value", "d"), RawRecord("f", 1, "ok"))
    row = {**to_row(letter), "raw": "late \ud800 surrogate"}
    write_rows(str(tmp_path / "d.parquet"), [row], DEAD_LETTER_SCHEMA)
    assert pq.read_table(tmp_path / "d.parquet").column("raw").to_pylist() == ["late \ufffd surrogate"]


def item(file, index, text="t"):
    problem = Problem(problem_id="p", source="pb", domain="math", prompt="q", source_file=file, source_index=index)
    return problem, Trajectory(trajectory_id="t1", problem_id="p", source="pb", domain="math", origin="imported",
                               text=text, steps=(text,), step_spans=((0, len(text)),), step_segments=("answer",))


def test_duplicates_keep_the_first_read_whatever_the_order():
    items = [item("b.jsonl", 1), item("a.jsonl", 7), item("a.jsonl", 3), item(None, None)]
    for order in (items, items[::-1], items[1:] + items[:1]):
        kept, dropped = keep_first_read(order)
        assert (kept[0].source_file, kept[0].source_index, dropped) == ("a.jsonl", 3, 3)
    assert keep_first_read([items[0]]) == (items[0], 0)


def test_an_unforeseen_exception_is_one_rows_dead_letter(monkeypatch):
    import apache_beam as beam

    from prmflow import sources
    from prmflow.transforms.read import ParseRecords

    def broken(obj, raw, spec):
        raise ZeroDivisionError("a bug in an adapter")

    monkeypatch.setitem(sources.ADAPTERS, "jsonl", broken)
    fn = ParseRecords(InputConfig(path="mem.jsonl", format="jsonl", fields={"prompt": "q"}))
    fn.setup()
    (out,) = list(fn.process(RawRecord("mem.jsonl", 3, '{"q": "x"}')))
    assert isinstance(out, beam.pvalue.TaggedOutput)
    assert (out.value.reason, out.value.location) == ("unexpected_error", 3)
    assert "ZeroDivisionError: a bug in an adapter" in out.value.detail
