"""`prmflow run` end to end on the fake backend: sampling, rollouts, weights, manifest, rerun."""

from __future__ import annotations

import json

import duckdb
import yaml

from prmflow.pipelines.label import run
from prmflow.samplers.fake_backend import fake_answer


def write_config(tmp_path, method: str = "mc"):
    rows = [{"q": f"Add {i}, {i + 7} and {3 * i}.", "a": fake_answer(f"Add {i}, {i + 7} and {3 * i}.")} for i in range(20)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "fake",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(tmp_path / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.2}},
        "sampling": {"n": 3, "template": "question-answer", "batch_size": 8},
        "outcome": {"labeler": "exact"},
        "process": {"method": method, "rollouts": 6, "batch_trajectories": 10},
        "consistency": {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"},
        "output": {"num_shards": 2},
    }
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_fake_policy_run_reconciles_and_reruns_identically(tmp_path):
    config = write_config(tmp_path)
    first = run([config, "--output", str(tmp_path / "a")])
    second = run([config, "--output", str(tmp_path / "b")])
    assert first["reconciliation"]["ok"], first["reconciliation"]
    assert first["counts"]["trajectories"] == {"add": 60}
    assert first["counts"]["engine"]["samples"] == 60
    steps = duckdb.sql(f"SELECT count(*), count(weight), count(mc_value) FROM read_parquet('{tmp_path}/a/steps/*.parquet')").fetchall()[0]
    assert steps[0] == 60 * 4 and steps[1] == steps[0] and steps[2] == steps[0]
    for f in sorted((tmp_path / "a").rglob("*.parquet")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f
    assert second["counts"] == first["counts"]
