"""The portable runner path (what Flink and Spark use) gives the same shards as FnApiRunner.

Beam's Flink job server jar comes from Maven, which this machine can't reach; the local job service
runs the same portable protocol with a LOOPBACK environment."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prmflow.pipelines.label import run

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def job_service():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_portable_runner_matches_fnapi(tmp_path, job_service, monkeypatch):
    monkeypatch.chdir(REPO)
    config = str(REPO / "examples" / "processbench-gsm8k.yaml")
    run([config, "--output", str(tmp_path / "fnapi")])
    manifest = run([config, "--output", str(tmp_path / "portable"), "--runner=PortableRunner",
                    f"--job_endpoint={job_service}", "--environment_type=LOOPBACK"])
    assert manifest["reconciliation"]["ok"]
    files = sorted(p.relative_to(tmp_path / "fnapi") for p in (tmp_path / "fnapi").rglob("*.parquet"))
    assert files
    for rel in files:
        assert (tmp_path / "fnapi" / rel).read_bytes() == (tmp_path / "portable" / rel).read_bytes(), rel


@pytest.mark.engine
def test_portable_runner_runs_the_whole_arith_mc_pipeline_with_setup_file(tmp_path, job_service, monkeypatch):
    """Sampling and rollouts on the shipped model through the portable protocol, the package staged
    with --setup_file as a Flink or Dataflow job stages it: the same shards as FnApiRunner."""
    monkeypatch.chdir(REPO)
    example = yaml.safe_load((REPO / "examples" / "arith-mc.yaml").read_text())
    example["inputs"][0]["count"] = 12
    example["sampling"].update(n=2, batch_size=8)
    example["process"].update(rollouts=2, batch_trajectories=8)
    config = tmp_path / "arith-mc-small.yaml"
    config.write_text(yaml.safe_dump(example))
    fnapi = run([str(config), "--output", str(tmp_path / "fnapi")])
    portable = run([str(config), "--output", str(tmp_path / "portable"), "--runner=PortableRunner",
                    f"--job_endpoint={job_service}", "--environment_type=LOOPBACK", "--setup_file", "./setup.py"])
    assert portable["reconciliation"]["ok"] and portable["counts"]["engine"]["rollout_samples"] > 0
    assert portable["counts"] == fnapi["counts"]
    files = sorted(p.relative_to(tmp_path / "fnapi") for p in (tmp_path / "fnapi").rglob("*.parquet"))
    assert len(files) == 12
    for rel in files:
        assert (tmp_path / "fnapi" / rel).read_bytes() == (tmp_path / "portable" / rel).read_bytes(), rel
