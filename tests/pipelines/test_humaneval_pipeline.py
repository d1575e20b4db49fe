"""A run over HumanEval: the canonical solutions become trajectories judged by the sandboxed code labeler."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import yaml

from prmflow.pipelines.label import run


def test_humaneval_run_writes_trajectories_and_steps_with_outcomes(tmp_path, shared_data):
    config = {
        "name": "humaneval-canonical",
        "seed": 0,
        "inputs": [{"name": "humaneval", "format": "humaneval", "limit": 20,
                    "path": str(shared_data / "humaneval" / "HumanEval.jsonl.gz")}],
        "segment": {"strategy": "given"},
        "outcome": {"labeler": "code", "options": {"timeout_s": 20}},
        "output": {"dir": str(tmp_path / "out"), "num_shards": 1},
    }
    path = tmp_path / "humaneval.yaml"
    path.write_text(yaml.safe_dump(config))
    run([str(path), "--output", str(tmp_path / "out")])

    problems = pq.read_table(tmp_path / "out" / "problems").to_pylist()
    assert len(problems) == 20 and all(p["domain"] == "code" and json.loads(p["tests"])["entry_point"] for p in problems)
    trajectories = pq.read_table(tmp_path / "out" / "trajectories").to_pylist()
    assert len(trajectories) == 20
    for t in trajectories:
        assert (t["outcome"], t["outcome_source"], t["outcome_status"]) == (1.0, "code", "ok"), t["outcome_detail"]
        assert t["gold_outcome"] == 1.0
    steps = pq.read_table(tmp_path / "out" / "steps").to_pylist()
    assert len(steps) == sum(len(t["steps"]) for t in trajectories)
    assert all(s["outcome"] == 1.0 and s["domain"] == "code" for s in steps)
    # One step per line of code, indentation kept.
    assert all(s["step_text"].startswith("    ") for s in steps)
