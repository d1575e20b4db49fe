"""Consistency weights over step rows, and a self-training round that weighs imported labels by an
external PRM's scores."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

from prmflow.core.weights import WeightsConfig, kept_counts, row_weight
from prmflow.pipelines.label import run


def row(score, outcome, column="prm_score"):
    return {column: score, "outcome": outcome}


@pytest.mark.parametrize(
    "mode, score, outcome, weight",
    [
        ("hard", 0.9, 1.0, 1.0),   # positive label, right outcome: kept
        ("hard", 0.9, 0.0, 0.0),   # positive label, wrong outcome: dropped
        ("hard", 0.1, 0.0, 1.0),   # negative label, wrong outcome: kept
        ("hard", None, 1.0, 0.0),  # no score: never kept
        ("soft", 0.8, 1.0, 0.8),
        ("soft", 0.8, 0.0, pytest.approx(0.2)),
        ("hard", 0.9, None, None),  # no outcome to agree with
    ],
)
def test_row_weight(mode, score, outcome, weight):
    assert row_weight(row(score, outcome), WeightsConfig.from_dict({"mode": mode, "score": "prm_score"})) == weight


def test_balanced_uses_corpus_counts():
    cfg = WeightsConfig.from_dict({"mode": "balanced", "score": "prm_score"})
    rows = [row(0.9, 1.0), row(0.9, 1.0), row(0.9, 1.0), row(0.1, 0.0), row(0.9, 0.0)]
    n_pos, n_neg = map(sum, zip(*(kept_counts(r, cfg) for r in rows), strict=True))
    assert (n_pos, n_neg) == (3, 1)
    # MetaStone-S1 (+1 smoothing): P = 4, Q = 2, N = 6 -> positive 1.5*2/6, negative 4/6
    assert row_weight(rows[0], cfg, (n_pos, n_neg)) == pytest.approx(0.5)
    assert row_weight(rows[3], cfg, (n_pos, n_neg)) == pytest.approx(4 / 6)
    assert row_weight(rows[4], cfg, (n_pos, n_neg)) == 0.0


def test_unknown_score_column_is_an_error():
    with pytest.raises(ValueError, match="consistency.score must be one of"):
        WeightsConfig.from_dict({"mode": "hard", "score": "value"})


def test_self_training_round_weighs_imported_steps_by_prm_scores(tmp_path):
    rows = [
        {"q": "1+1?", "a": "2", "steps": ["1+1 = 2", "The answer is 2"], "prm": [0.9, 0.8]},
        {"q": "2+2?", "a": "4", "steps": ["2+2 = 5", "The answer is 5"], "prm": [0.2, 0.7]},
        {"q": "3+3?", "a": "6", "steps": ["3+3 = 6"], "prm": [0.4, 0.5]},  # one score too many
    ]
    data = tmp_path / "round1.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "round2.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "round2",
        "inputs": [{"name": "r1", "format": "jsonl", "path": str(data),
                    "fields": {"prompt": "q", "reference_answer": "a", "steps": "steps", "step_scores": "prm"}}],
        "segment": {"strategy": "given"},
        "outcome": {"labeler": "numeric"},
        "consistency": {"mode": "hard", "score": "prm_score", "threshold": 0.5},
    }))
    manifest = run([str(cfg), "--output", str(tmp_path / "out")])
    assert manifest["reconciliation"]["ok"]
    steps = sorted(pq.read_table(tmp_path / "out" / "steps").to_pylist(), key=lambda r: (r["outcome"], r["step_index"]))
    assert [(r["outcome"], r["prm_score"], r["weight"]) for r in steps] == [
        (0.0, 0.2, 1.0),  # wrong trajectory: the step the PRM scored low agrees
        (0.0, 0.7, 0.0),  # ... the one it scored high does not
        (1.0, 0.9, 1.0),
        (1.0, 0.8, 1.0),
    ]
    dead = pq.read_table(tmp_path / "out" / "dead_letters").to_pylist()
    assert [(d["reason"], "2 scores for 1 steps" in d["detail"]) for d in dead] == [("bad_value", True)]
