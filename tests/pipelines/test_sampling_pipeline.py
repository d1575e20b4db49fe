"""The sampling stage inside `prmflow run`: real engines, dead letters for refused requests,
reproducible shards."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from prmflow.pipelines.label import run

pytestmark = pytest.mark.engine


def write_inputs(tmp_path: Path, long_prompt: bool = True) -> Path:
    rows = [{"q": f"Tom has {i} apples and buys {i + 2} more. How many?", "a": str(2 * i + 2)} for i in range(1, 6)]
    if long_prompt:
        rows.insert(2, {"q": "apples " * 400 + "How many?", "a": "1"})  # far over the 256-token context
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tmp_path: Path, sampler: dict, *, n: int = 3, long_prompt: bool = True) -> Path:
    cfg = {
        "name": "sampling-test",
        "seed": 3,
        "inputs": [{"name": "toy", "format": "jsonl", "path": str(write_inputs(tmp_path, long_prompt)),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": sampler,
        "sampling": {"n": n, "temperature": 1.0, "max_tokens": 16, "template": "question-answer", "batch_size": 4},
        "outcome": {"labeler": "numeric"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def vllm_section(model_dir: Path) -> dict:
    return {"backend": "vllm", "model": str(model_dir), "dtype": "float32", "max_model_len": 256,
            "kv_cache_memory_bytes": 256 << 20, "block_size": 32, "enforce_eager": True}


def dead_letters(out: Path) -> list[dict]:
    return pq.read_table(out / "dead_letters").to_pylist()


def test_vllm_sampling_prompt_too_long_is_dead_lettered_and_rerun_is_identical(tmp_path, tiny_model_dir):
    cfg = config(tmp_path, vllm_section(tiny_model_dir))
    first = run([str(cfg), "--output", str(tmp_path / "a")])
    second = run([str(cfg), "--output", str(tmp_path / "b")])

    dead = dead_letters(tmp_path / "a")
    assert [(d["stage"], d["reason"]) for d in dead] == [("sample", "prompt_too_long")]
    assert "apples apples" in dead[0]["raw"] and dead[0]["location"] == 3
    assert first["counts"]["trajectories"] == {"toy": 5 * 3}  # the rest of its batch was sampled
    assert first["reconciliation"]["ok"], first["reconciliation"]
    engine = first["counts"]["engine"]
    assert engine["requests"] == 6 and engine["failures"] == 1 and engine["generated_tokens"] > 0

    for table in ("problems", "trajectories", "steps", "dead_letters"):
        for f in sorted((tmp_path / "a" / table).glob("*.parquet")):
            assert f.read_bytes() == (tmp_path / "b" / table / f.name).read_bytes(), f
    assert second["counts"] == first["counts"]


def openai_section(base_url: str) -> dict:
    return {"backend": "openai", "model": "tiny", "base_url": base_url, "max_retries": 1,
            "backoff_s": 0.01, "timeout_s": 5}


def test_openai_unreachable_server_gives_dead_letters_and_the_run_completes(tmp_path, unused_port):
    manifest = run([str(config(tmp_path, openai_section(f"http://127.0.0.1:{unused_port}/v1"), long_prompt=False)),
                    "--output", str(tmp_path / "out")])
    dead = dead_letters(tmp_path / "out")
    assert len(dead) == 5 and {d["reason"] for d in dead} == {"connect_error"}
    assert all(d["stage"] == "sample" and d["detail"] for d in dead)
    assert manifest["reconciliation"]["ok"]
    assert manifest["counts"].get("trajectories", {}) == {}


def test_openai_http_500_gives_dead_letters_after_retries(tmp_path, fake_server):
    server = fake_server(lambda path, body, n: (500, {}, {"error": "boom"}))
    manifest = run([str(config(tmp_path, openai_section(server.base_url), long_prompt=False)), "--output", str(tmp_path / "out")])
    dead = dead_letters(tmp_path / "out")
    assert len(dead) == 5 and {d["reason"] for d in dead} == {"http_500"}
    assert "after 2 attempts" in dead[0]["detail"]
    assert len(server.hits) == 5 * 2  # each request tried, then retried once
    assert manifest["reconciliation"]["ok"]
