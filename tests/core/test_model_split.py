"""segment: {strategy: model}: the model's split is kept only when it is the trace's text."""

from __future__ import annotations

import json

import duckdb
import pytest
import yaml

from prmflow.core.segment import SegmentConfig, align_pieces, model_split, segment, split_prompt
from prmflow.pipelines.label import run
from prmflow.samplers.base import SamplerConfig

FAKE = SamplerConfig(backend="fake", model="fake")
CONFIG = SegmentConfig(strategy="model", model=FAKE)
TRACE = "First add 3 and 4 to get 7. Then double it: 14.\nSo the answer is 14."


@pytest.mark.parametrize("pieces, ok", [
    (["First add 3 and 4 to get 7.", "Then double it: 14.", "So the answer is 14."], True),
    (["First add 3 and 4", "to get 7. Then double it: 14.\nSo the answer is 14."], True),  # any cut points
    (["First add 3 and 4 to get 7.", "So the answer is 14."], False),                      # a step dropped
    (["First add 3 and 4 to get 8.", "Then double it: 14.", "So the answer is 14."], False),  # text changed
    (["First add 3 and 4 to get 7. Then double it: 14. So the answer is 14. Extra."], False),  # text added
])
def test_align_pieces_accepts_only_the_same_text(pieces, ok):
    spans = align_pieces(TRACE, pieces)
    assert (spans is not None) == ok
    if ok:
        assert [TRACE[a:b] for a, b in spans] == [p.strip() for p in pieces]


def test_rule_split_first_then_the_model_split_replaces_it():
    seg = segment(TRACE, CONFIG)
    assert len(seg.spans) == 2  # lines, the fallback rule
    generated = "<step>\nFirst add 3 and 4 to get 7.\n<step>\nThen double it: 14.\n<step>\nSo the answer is 14.\n"
    new = model_split(seg, generated, CONFIG)
    assert new is not None and new.steps == ("First add 3 and 4 to get 7.", "Then double it: 14.", "So the answer is 14.")
    assert "".join(new.steps).replace(" ", "") == TRACE.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("generated", [
    "",                                                     # nothing
    "First add 3 and 4 to get 7.",                          # no markers, partial
    "<step>\nFirst add 3 and 4 to get 7.\n<step>\nThe answer is 15.\n",  # rewritten
])
def test_unfaithful_splits_are_refused(generated):
    assert model_split(segment(TRACE, CONFIG), generated, CONFIG) is None


def test_only_the_thinking_part_is_resplit():
    text = "<think>Add 3 and 4. That is 7. Double: 14.</think>\nThe answer is 14."
    seg = segment(text, CONFIG)
    new = model_split(seg, "<step>\nAdd 3 and 4.\n<step>\nThat is 7.\n<step>\nDouble: 14.\n", CONFIG)
    assert new.steps == ("Add 3 and 4.", "That is 7.", "Double: 14.", "The answer is 14.")
    assert new.segments == ("thinking", "thinking", "thinking", "response")


def test_a_trace_cannot_forge_the_models_markers():
    assert "<step>\n" not in split_prompt("a\n<step>\nb")


def test_pipeline_resplits_with_the_fake_splitter_and_keeps_imported_gold(tmp_path):
    rows = [{"q": f"q{i}", "s": f"We add {i} and 1. That gives {i + 1}. The answer is {i + 1}.", "a": str(i + 1)}
            for i in range(6)]
    rows.append({"q": "qg", "s": "One. Two.\nThree.", "a": "3", "g": [1.0, 0.0]})
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "split",
        "inputs": [{"name": "t", "format": "jsonl", "path": str(tmp_path / "in.jsonl"),
                    "fields": {"prompt": "q", "solution": "s", "reference_answer": "a", "gold_step_labels": "g"}}],
        "segment": {"strategy": "model", "model": {"backend": "fake", "model": "fake"}},
        "outcome": {"labeler": "exact"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    manifest = run([str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")])
    assert manifest["reconciliation"]["ok"]
    assert manifest["counts"]["model_split"] == {"accepted": 6, "kept_aligned_gold": 1}
    steps = dict(duckdb.sql(f"SELECT t.text, len(t.steps) FROM read_parquet('{tmp_path}/out/trajectories/*.parquet') t").fetchall())
    assert steps["We add 2 and 1. That gives 3. The answer is 3."] == 3  # one line, three sentences
    assert steps["One. Two.\nThree."] == 2  # imported gold is aligned to the lines: kept
