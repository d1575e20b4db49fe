"""Step labels from rollouts inside `prmflow run`, on the real vLLM engine (tiny random model):
steps, start_states and rollouts shards, reproducible, every rollout audited."""

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from prmflow.pipelines.label import run

pytestmark = pytest.mark.engine


def write_inputs(tmp_path: Path) -> Path:
    rows = [
        {"q": f"Ann has {i} pens and gets {i + 1} more. How many?", "a": str(2 * i + 1),
         "steps": [f"Ann starts with {i}.", f"{i} + {i + 1} = {2 * i + 1}", f"The answer is {2 * i + 1 + (i % 2)}"]}
        for i in range(1, 7)
    ]
    path = tmp_path / "solutions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tmp_path: Path, model_dir: Path, method: str) -> Path:
    cfg = {
        "name": f"rollouts-{method}",
        "seed": 1,
        "inputs": [{"name": "toy", "format": "jsonl", "path": str(write_inputs(tmp_path)),
                    "fields": {"prompt": "q", "reference_answer": "a", "steps": "steps"}}],
        "segment": {"strategy": "given"},
        "sampler": {"backend": "vllm", "model": str(model_dir), "dtype": "float32", "max_model_len": 256,
                    "kv_cache_memory_bytes": 256 << 20, "block_size": 32, "enforce_eager": True},
        "sampling": {"n": 0, "template": "question-answer"},
        "outcome": {"labeler": "numeric"},
        "process": {"method": method, "rollouts": 3, "max_tokens": 12, "batch_trajectories": 4},
        "consistency": {"mode": "balanced", "score": "mc_value", "ties": "negative"},
        "output": {"num_shards": 2},
    }
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def mc_runs(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("mc")
    cfg = config(tmp, tiny_model_dir, "mc")
    return tmp, run([str(cfg), "--output", str(tmp / "a")]), run([str(cfg), "--output", str(tmp / "b")])


def test_mc_writes_all_three_shards_and_audits_every_rollout(mc_runs):
    tmp, manifest, _ = mc_runs
    con = duckdb.connect()
    q = lambda sql: con.execute(sql.replace("OUT", str(tmp / "a"))).fetchall()  # noqa: E731
    steps = q("SELECT count(*), sum(mc_rollouts) FROM read_parquet('OUT/steps/*.parquet')")[0]
    rollouts = q("SELECT count(*) FROM read_parquet('OUT/rollouts/*.parquet')")[0][0]
    states = q("SELECT count(*), sum(rollouts) FROM read_parquet('OUT/start_states/*.parquet')")[0]
    assert steps[0] == 6 * 3
    # every boundary but the last (its value is the outcome) gets M = 3 rollouts
    assert steps[1] == rollouts == states[1] == 6 * 2 * 3 and states[0] == 6 * 2
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    # values and labels follow from the audited rollouts
    bad = q("""SELECT s.step_id FROM read_parquet('OUT/steps/*.parquet') s
               JOIN read_parquet('OUT/start_states/*.parquet') st
                 ON st.trajectory_id = s.trajectory_id AND st.k = s.step_index + 1
               WHERE s.mc_successes <> st.successes OR s.mc_value <> st.success_rate""")
    assert bad == []
    assert q("SELECT count(*) FROM read_parquet('OUT/steps/*.parquet') WHERE weight IS NULL")[0][0] == 0
    cached = q("SELECT sum(cached_prompt_tokens) FROM read_parquet('OUT/start_states/*.parquet')")[0][0]
    assert cached > 0  # start states of one trajectory share a prefix and are sent together


def test_mc_rerun_is_identical(mc_runs):
    tmp, first, second = mc_runs
    for table in ("steps", "start_states", "rollouts"):
        for f in sorted((tmp / "a" / table).glob("*.parquet")):
            assert f.read_bytes() == (tmp / "b" / table / f.name).read_bytes(), f
    assert first["counts"] == second["counts"]


def test_binary_search_spends_fewer_rollouts_on_the_same_trajectories(mc_runs, tiny_model_dir):
    tmp, mc_manifest, _ = mc_runs
    bs = run([str(config(tmp, tiny_model_dir, "binary-search")), "--output", str(tmp / "bs")])
    assert bs["reconciliation"]["ok"]
    assert bs["counts"]["rollouts_rows"]["all"] < mc_manifest["counts"]["rollouts_rows"]["all"]
    labels = duckdb.sql(f"SELECT method, count(*) FROM read_parquet('{tmp}/bs/steps/*.parquet') GROUP BY 1").fetchall()
    assert labels == [("binary-search", 18)]
