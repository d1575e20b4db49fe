"""A killed run resumes: SIGKILL at four points (during sampling, during rollouts, during writing,
before publishing), then the same command again. The rerun's shards equal an uninterrupted run's
byte for byte, and it sends the engine only the batches the killed run had not finished (the
manifest's engine counts: new + reused = the clean run's, reused = what the cache held at the kill).

Runs are real `python -m prmflow run` processes on the fake backend (each engine call takes
``delay_s``, so the stages last long enough to be interrupted); every wait is for an event on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prmflow.pipelines.output import PAUSE_ENV
from prmflow.samplers.fake_backend import fake_answer

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, delay_s: float) -> Path:
    rows = [{"q": f"Add {i}, {i % 7} and {i * 3}.", "a": fake_answer(f"Add {i}, {i % 7} and {i * 3}.")} for i in range(24)]
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "resume",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(data), "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.2, "delay_s": delay_s}},
        "sampling": {"n": 2, "template": "question-answer", "batch_size": 4},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 4, "batch_trajectories": 6},
        "output": {"num_shards": 2},
    }
    path = tmp_path / f"c{delay_s}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prmflow(config: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prmflow", "run", str(config), "--output", str(out), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})})


def entries(out: Path, stage: str) -> int:
    return sum(1 for _ in (out / "_cache" / stage).rglob("*.json")) if (out / "_cache" / stage).exists() else 0


def staged(out: Path, pattern: str) -> bool:
    return any(out.glob(f".prmflow-staging-*/{pattern}"))


def wait_for(what: str, condition, proc: subprocess.Popen, limit_s: float = 240) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1].decode()[-2000:]}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def shards(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    """One config for every run here: the stage cache is keyed by the config, and so is provenance."""
    return write_config(tmp_path_factory.mktemp("config"), 0.15)


@pytest.fixture(scope="module")
def clean(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    proc = prmflow(config, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    # published: the cache is gone, but for the samples' (which a config adding stages reuses)
    assert not (out / "_cache" / "rollout").exists() and entries(out, "sample") > 0
    return shards(out), json.loads((out / "manifest.json").read_text())["counts"]["engine"]


KILL_POINTS = {
    "during sampling": lambda out: entries(out, "sample") >= 2,
    "during rollouts": lambda out: entries(out, "rollout") >= 2,
    "during writing": lambda out: staged(out, "steps/*"),  # the last table: every batch is done
    "before publishing": lambda out: staged(out, "manifest.json"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_without_redoing_finished_batches(point, config, clean, tmp_path):
    expected_shards, clean_engine = clean
    out = tmp_path / "out"
    # the last two points are moments before the end: the failpoint holds the staged output so that
    # polling sees them on a loaded machine too (a CI run once finished before the poll saw the manifest)
    late = point in ("during writing", "before publishing")
    proc = prmflow(config, out, env={PAUSE_ENV: "30"} if late else None)
    try:
        wait_for(point, lambda: KILL_POINTS[point](out), proc)
        held = {"sample": entries(out, "sample"), "rollout": entries(out, "rollout")}
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "_SUCCESS").exists()

    rerun = prmflow(config, out)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-3000:]
    assert shards(out) == expected_shards
    engine = json.loads((out / "manifest.json").read_text())["counts"]["engine"]
    for key in ("batches", "requests", "samples", "rollout_batches", "rollout_requests", "rollout_samples"):
        reused = key.replace("rollout_", "rollout_reused_") if key.startswith("rollout_") else f"reused_{key}"
        assert engine.get(key, 0) + engine.get(reused, 0) == clean_engine[key], key
    assert engine.get("reused_batches", 0) >= held["sample"] > 0
    assert engine.get("rollout_reused_batches", 0) >= held["rollout"]
    if point in ("during writing", "before publishing"):  # every batch was done: nothing is sampled again
        assert engine.get("batches", 0) == engine.get("rollout_batches", 0) == 0


def test_fresh_ignores_the_cache(config, clean, tmp_path):
    out = tmp_path / "out"
    proc = prmflow(config, out)
    try:
        wait_for("a rollout batch", lambda: entries(out, "rollout") >= 1, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    rerun = prmflow(config, out, "--fresh")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-3000:]
    engine = json.loads((out / "manifest.json").read_text())["counts"]["engine"]
    assert engine.get("reused_batches", 0) == engine.get("rollout_reused_batches", 0) == 0
    assert shards(out) == clean[0]
