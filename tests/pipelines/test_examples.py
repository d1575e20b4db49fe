"""The shipped examples on the shipped model (builtin:arith-tiny, real vLLM engine)."""

from pathlib import Path

import duckdb
import pytest

from prmflow.pipelines.label import run

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # example paths are relative to the repository root


def test_gsm8k_sample_writes_80_trajectories_and_reruns_identically(tmp_path):
    example = str(REPO / "examples" / "gsm8k-sample.yaml")
    first = run([example, "--output", str(tmp_path / "a")])
    second = run([example, "--output", str(tmp_path / "b")])
    assert first["counts"]["trajectories"] == {"gsm8k-test": 80}
    assert first["counts"]["steps_rows"]["all"] > 0 and first["reconciliation"]["ok"]
    for table in ("trajectories", "steps"):
        files = sorted((tmp_path / "a" / table).glob("*.parquet"))
        assert files
        for f in files:
            assert f.read_bytes() == (tmp_path / "b" / table / f.name).read_bytes(), f
    assert second["counts"] == first["counts"]


def test_gsm8k_reverse_curriculum_writes_staged_start_states(tmp_path):
    from prmflow.core.slicing import reverse_curriculum_ks

    manifest = run([str(REPO / "examples" / "gsm8k-reverse-curriculum.yaml"), "--output", str(tmp_path / "out")])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    con = duckdb.connect()
    out = tmp_path / "out"
    planned = sum(
        len(reverse_curriculum_ks(n, 4))
        for (n,) in con.execute(f"SELECT len(steps) FROM read_parquet('{out}/trajectories/*.parquet')").fetchall()
    )
    written = con.execute(f"SELECT count(*) FROM read_parquet('{out}/start_states/*.parquet')").fetchone()[0]
    # GSM8K question + demonstration prefix can overflow the shipped model's 256-token context
    refused = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/dead_letters/*.parquet') WHERE stage = 'rollout' AND reason = 'prompt_too_long'"
    ).fetchone()[0]
    assert written > 0 and written + refused == planned
    rows = con.execute(
        f"SELECT list(k ORDER BY stage), list(stage ORDER BY stage), min(rollouts), max(rollouts), "
        f"bool_and(success_rate BETWEEN 0 AND 1) FROM read_parquet('{out}/start_states/*.parquet') GROUP BY trajectory_id"
    ).fetchall()
    for ks, stages, lo, hi, rates_ok in rows:
        assert stages == sorted(set(stages)) and ks == sorted(set(ks), reverse=True)  # stage 0 nearest the end
        assert lo == hi == 4 and rates_ok
