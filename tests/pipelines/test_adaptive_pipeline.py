"""process.sequential / adaptive / active through the real pipeline (FnApiRunner, fake engine)."""

from __future__ import annotations

import duckdb
import yaml

from prmflow.pipelines.label import run
from tests.pipelines.test_fake_policy_pipeline import write_config


def config_with(tmp_path, name: str, **process):
    path = write_config(tmp_path, "binary-search")
    config = yaml.safe_load(open(path))
    config["process"].update(process)
    config["sampling"]["n"] = 6
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(config))
    return str(out)


def first_errors(out_dir) -> dict:
    rows = duckdb.sql(f"SELECT trajectory_id, step_index FROM read_parquet('{out_dir}/steps/*.parquet') "
                      "WHERE first_error").fetchall()
    return dict(rows)


def test_adaptive_binary_search_runs_reruns_identically_and_spends_less(tmp_path):
    plain = run([config_with(tmp_path, "plain"), "--output", str(tmp_path / "plain")])
    adaptive_cfg = config_with(tmp_path, "adaptive", sequential=True, adaptive={"confidence": 0.9})
    a = run([adaptive_cfg, "--output", str(tmp_path / "a")])
    run([adaptive_cfg, "--output", str(tmp_path / "b")])
    assert a["reconciliation"]["ok"], a["reconciliation"]
    for f in sorted((tmp_path / "a").rglob("*.parquet")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f
    spent = lambda m: m["counts"]["engine"]["rollout_samples"]  # noqa: E731
    assert spent(a) < spent(plain)
    # the run-wide pass rate reached the labeler: start states carry budgets other than process.rollouts
    budgets = {r[0] for r in duckdb.sql(
        f"SELECT DISTINCT rollouts FROM read_parquet('{tmp_path}/a/start_states/*.parquet')").fetchall()}
    assert budgets != {6}
    found, truth = first_errors(tmp_path / "a"), first_errors(tmp_path / "plain")
    assert set(found) == set(truth)


def test_active_selection_counts_what_it_skipped(tmp_path):
    path = config_with(tmp_path, "active", active={"score": "judge", "confidence": 0.9})
    config = yaml.safe_load(open(path))
    config["judge"] = {"sampler": {"backend": "fake", "model": "fake"}, "template": "first-error", "votes": 3, "temperature": 1.0}
    open(path, "w").write(yaml.safe_dump(config))
    manifest = run([path, "--output", str(tmp_path / "o")])
    assert manifest["reconciliation"]["ok"]
    skipped = manifest["counts"]["engine"]["rollout_active_skipped"]
    unrolled = duckdb.sql(
        f"SELECT count(DISTINCT trajectory_id) FROM read_parquet('{tmp_path}/o/steps/*.parquet') s "
        "WHERE first_error AND mc_rollouts = 0 AND NOT EXISTS (SELECT 1 FROM read_parquet("
        f"'{tmp_path}/o/start_states/*.parquet') st WHERE st.trajectory_id = s.trajectory_id)").fetchall()[0][0]
    assert skipped == unrolled and skipped > 0
