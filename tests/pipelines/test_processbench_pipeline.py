"""Acceptance: the ProcessBench gsm8k example end to end, and reproducible shards."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prmflow.cli import main
from prmflow.pipelines.label import run

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "processbench-gsm8k.yaml"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.chdir(REPO)  # the example's paths are relative to the repository root
    base = tmp_path_factory.mktemp("pb")
    first = run([str(EXAMPLE), "--output", str(base / "a")])
    run([str(EXAMPLE), "--output", str(base / "b")])
    return base / "a", base / "b", first


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_one_step_row_per_step_with_gold_intact(outputs, shared_data):
    out, _, manifest = outputs
    raw = json.load(open(shared_data / "processbench" / "gsm8k.json"))
    expected_steps = sum(len(r["steps"]) for r in raw)  # counted independently of prmflow
    steps = pq.read_table(out / "steps").to_pylist()
    assert len(steps) == expected_steps == manifest["counts"]["steps_rows"]["all"]

    trajectories = {t["metadata"]: t for t in pq.read_table(out / "trajectories").to_pylist()}
    by_traj = {}
    for s in steps:
        by_traj.setdefault(s["trajectory_id"], []).append(s)
    for row in raw:
        t = trajectories[json.dumps({"id": row["id"]})]
        assert list(t["steps"]) == row["steps"]
        assert t["gold_first_error"] == row["label"]
        assert t["gold_outcome"] == (1.0 if row["final_answer_correct"] else 0.0)
        rows = sorted(by_traj[t["trajectory_id"]], key=lambda s: s["step_index"])
        assert [s["step_text"] for s in rows] == row["steps"]
        for s in rows:
            assert s["gold_first_error"] == row["label"]
            if row["label"] == -1 or s["step_index"] < row["label"]:
                assert s["gold_label"] == 1.0
            elif s["step_index"] == row["label"]:
                assert s["gold_label"] == 0.0
            else:
                assert s["gold_label"] is None


def test_sql_counts_trajectories_without_error(outputs, capsys):
    out, _, _ = outputs
    assert main(["sql", str(out), "SELECT count(*) FROM trajectories WHERE gold_first_error = -1"]) == 0
    assert capsys.readouterr().out.strip() == "193"


def test_outcomes_agree_with_processbench(outputs):
    out, _, manifest = outputs
    rows = pq.read_table(out / "trajectories", columns=["outcome", "gold_outcome", "outcome_status"]).to_pylist()
    assert {r["outcome_status"] for r in rows} == {"ok"}  # every reference was joined
    assert sum(r["outcome"] == r["gold_outcome"] for r in rows) >= 397


def test_rerun_gives_identical_shards(outputs):
    a, b, _ = outputs
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*.parquet"))
    assert files_a == files_b and len(files_a) == 12  # 6 tables x 2 shards, empty ones included
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_manifest_has_counts_schema_version_and_timings(outputs):
    out, _, _ = outputs
    m = json.loads((out / "manifest.json").read_text())
    assert m["prmflow_schema_version"] >= 1
    assert m["reconciliation"]["ok"]
    assert m["counts"]["records_read"] == {"processbench-gsm8k": 400, "processbench-gsm8k:references": 1319}
    assert m["timings"]["wall_seconds"] > 0
    assert (out / "_SUCCESS").exists()
    meta = pq.read_schema(next((out / "steps").glob("*.parquet"))).metadata
    assert meta[b"prmflow.schema_version"] == str(m["prmflow_schema_version"]).encode()


def test_inspect_prints_summary(outputs, capsys):
    out, _, _ = outputs
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for section in ("Label balance by source", "Steps per trajectory", "Gold first-error position", "Outcome labeling status"):
        assert section in text
