"""The ``prm`` section in a ``prmflow run`` on the fake policy: every step gets the PRM's score, and a
second round weighted by it differs from the first exactly where the PRM disagrees with the MC labels
(MetaStone-S1's self-supervised loop, round 2)."""

from __future__ import annotations

import json

import duckdb
import pytest
import yaml

from prmflow.pipelines.label import run
from prmflow.samplers.fake_backend import fake_answer


def round_config(tmp_path, prm: str | None) -> str:
    config = {
        "name": "self-train",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(tmp_path / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.25}},
        "sampling": {"n": 3, "template": "question-answer", "batch_size": 8},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 4, "batch_trajectories": 10},
        # round 1: the MC hard label (value > 0) against the outcome; round 2: the PRM's (p > 0.5)
        "consistency": {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"},
    }
    if prm is not None:
        config["prm"] = {"model": prm, "batch_trajectories": 7, "batch_size": 5, "device": "cpu"}
        config["consistency"] = {"mode": "hard", "score": "prm_score", "threshold": 0.5, "ties": "negative"}
    path = tmp_path / ("round2.yaml" if prm else "round1.yaml")
    path.write_text(yaml.safe_dump(config))
    return str(path)


def steps(out) -> dict:
    rows = duckdb.sql(f"SELECT step_id, mc_value, outcome, weight, prm_score, trajectory_id, step_index, step_text "
                      f"FROM read_parquet('{out}/steps/*.parquet')").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    from prmflow.export.api import export
    from prmflow.export.config import ExportConfig
    from prmflow.prm.config import parse_train_config
    from prmflow.prm.train import train

    d = tmp_path_factory.mktemp("self-train")
    qs = [f"Add {i}, {i + 7} and {3 * i}." for i in range(16)]
    (d / "p.jsonl").write_text("".join(json.dumps({"q": q, "a": fake_answer(q)}) + "\n" for q in qs))
    first = run([round_config(d, None), "--output", str(d / "r1")])
    export(str(d / "r1"), str(d / "r1-export"), ExportConfig(format="prmflow", label="hard", val_fraction=0.0))
    prm = train(parse_train_config({"data": str(d / "r1-export"), "output": str(d / "prm1"), "epochs": 1,
                                    "batch_size": 8, "max_length": 96, "device": "cpu"}), progress=False)
    second = run([round_config(d, prm.output), "--output", str(d / "r2")])
    return d, first, second, prm


def test_every_step_gets_the_prms_score_as_the_scorer_gives_it(rounds):
    from prmflow.prm.scorer import PRMScorer

    d, first, second, prm = rounds
    assert second["reconciliation"]["ok"], second["reconciliation"]
    assert second["counts"]["trajectories"] == first["counts"]["trajectories"]
    r1, r2 = steps(d / "r1"), steps(d / "r2")
    assert r1.keys() == r2.keys() and all(r[3] is None for r in r1.values())
    assert all(r[3] is not None and 0.0 <= r[3] <= 1.0 for r in r2.values())
    con = duckdb.sql(f"SELECT p.prompt, t.steps, t.trajectory_id FROM read_parquet('{d}/r2/trajectories/*.parquet') t "
                     f"JOIN read_parquet('{d}/r2/problems/*.parquet') p USING (problem_id) ORDER BY 3 LIMIT 5")
    scorer = PRMScorer(prm.output, device="cpu", batch_size=1)
    by_step = {(r[4], r[5]): r[3] for r in r2.values()}
    for prompt, texts, tid in con.fetchall():
        direct = scorer.score(prompt, texts)
        assert direct == pytest.approx([by_step[(tid, i)] for i in range(len(texts))], abs=1e-5)


def test_round_two_weights_differ_exactly_where_the_prm_disagrees_with_the_mc_labels(rounds):
    d, _, _, _ = rounds
    r1, r2 = steps(d / "r1"), steps(d / "r2")
    differ = disagree = 0
    for step_id, (mc, outcome, w1, _, *_rest) in r1.items():
        mc2, outcome2, w2, prm_score, *_ = r2[step_id]
        assert (mc2, outcome2) == (mc, outcome)  # the same trajectories and MC labels in both rounds
        assert w1 is not None and w2 is not None
        prm_disagrees = (prm_score > 0.5) != (mc > 0.0)
        assert (w1 != w2) == prm_disagrees, (step_id, mc, prm_score, w1, w2)
        differ += w1 != w2
        disagree += prm_disagrees
    assert differ == disagree and 0 < differ < len(r1)  # a one-epoch PRM agrees with MC on some steps only
