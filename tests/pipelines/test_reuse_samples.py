"""Adding rollouts to a run that sampled does not sample again: a published run keeps its samples'
stage cache (``output.keep_cache`` left out), so the same config with a ``process`` section, run into
the same output, takes every sampling batch from it; its tables equal those of the bigger config run
from scratch. ``keep_cache: false`` keeps nothing; ``true`` keeps every stage."""

from __future__ import annotations

import json

import prmflow


def config(tmp_path, **extra) -> dict:
    rows = [{"question": f"Add {i}, {i + 7} and {3 * i}.", "answer": f"#### {5 * i + 7}"} for i in range(6)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"name": "reuse", "inputs": [{"name": "add", "format": "jsonl", "path": str(path)}],
            "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.2}},
            "sampling": {"n": 3, "template": "question-answer"}, "outcome": {"labeler": "exact"}, **extra}


PROCESS = {"process": {"method": "mc", "rollouts": 2}}


def shards(out) -> dict:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


def test_adding_rollouts_reuses_the_samples(tmp_path):
    out = tmp_path / "out"
    first = prmflow.run(config(tmp_path), output=out)
    assert first["counts"]["engine"]["samples"] == 18
    assert (out / "_cache" / "sample").is_dir()
    second = prmflow.run(config(tmp_path, **PROCESS), output=out)
    engine = second["counts"]["engine"]
    assert engine.get("samples", 0) == 0 and engine["reused_samples"] == 18 and engine["rollout_samples"] > 0
    assert not (out / "_cache" / "rollout").exists()  # the rollouts' cache goes as before
    scratch = tmp_path / "scratch"
    prmflow.run(config(tmp_path, **PROCESS), output=scratch)
    assert shards(out) == shards(scratch)


def test_keep_cache_false_keeps_nothing_and_true_everything(tmp_path):
    prmflow.run(config(tmp_path, output={"keep_cache": False}, **PROCESS), output=tmp_path / "none")
    assert not (tmp_path / "none" / "_cache").exists()
    prmflow.run(config(tmp_path, output={"keep_cache": True}, **PROCESS), output=tmp_path / "all")
    assert {p.name for p in (tmp_path / "all" / "_cache").iterdir()} == {"sample", "rollout", ".prmflow-cache"}


def test_keep_cache_left_out_keeps_the_config_digest():
    from prmflow.config import parse_config

    base = {"name": "d", "inputs": [{"format": "jsonl", "path": "x.jsonl"}]}
    assert parse_config(base).digest() == parse_config({**base, "output": {"keep_cache": False}}).digest()
