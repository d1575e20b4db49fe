"""sampler.model_copies: engines shared by every SDK process of a machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from prmflow.pipelines.label import run
from prmflow.samplers.base import SamplerConfig, SamplingRequest
from prmflow.samplers.fake_backend import fake_answer
from prmflow.transforms.engines import engine

REPO = Path(__file__).resolve().parents[2]


def test_a_machine_engine_answers_like_a_process_engine():
    shared = SamplerConfig(backend="fake", model="fake", model_copies=1)
    local = SamplerConfig(backend="fake", model="fake")
    requests = [SamplingRequest(f"r{i}", f"Add {i} and 2.", n=2, seed=i) for i in range(3)]
    proxy = engine(shared)
    proxy.reset_prefix_cache()
    assert proxy.generate(requests) == engine(local).generate(requests)


def test_two_processes_share_one_engine(tmp_path):
    """The second process's calls land on the engine the first one created: its counters see both."""
    script = textwrap.dedent(f"""
        import sys
        from prmflow.samplers.base import SamplerConfig, SamplingRequest
        from prmflow.transforms.engines import engine
        config = SamplerConfig(backend="fake", model="fake-{tmp_path.name}", model_copies=1)
        e = engine(config)
        e.generate([SamplingRequest("x", "Add 1 and 2.", n=1, seed=1)])
        print(e.metrics()["requests"], flush=True)
        sys.stdin.readline()  # the first process keeps the engine's server alive until told
    """)
    first = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout.readline().strip() == "1"
        second = subprocess.run([sys.executable, "-c", script], cwd=REPO, input="\n", capture_output=True, text=True,
                                timeout=120)
        assert second.stdout.strip() == "2", second.stderr[-2000:]
    finally:
        first.communicate("\n", timeout=60)


def test_multi_process_run_with_machine_engines_matches_one_process(tmp_path):
    copies = 1
    rows = "".join(f'{{"q": "Add {i}, {i + 1} and 3.", "a": "{fake_answer(f"Add {i}, {i + 1} and 3.")}"}}\n'
                   for i in range(12))
    (tmp_path / "p.jsonl").write_text(rows)
    config = {
        "name": "copies",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(tmp_path / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "model_copies": copies},
        "sampling": {"n": 2, "batch_size": 4},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 3, "batch_trajectories": 5},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    one = run([str(tmp_path / "c.yaml"), "--output", str(tmp_path / "one")])
    two = run([str(tmp_path / "c.yaml"), "--output", str(tmp_path / "two"),
               "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert one["reconciliation"]["ok"] and two["reconciliation"]["ok"]
    for f in sorted((tmp_path / "one").glob("*/*.parquet")):
        assert f.read_bytes() == (tmp_path / "two" / f.relative_to(tmp_path / "one")).read_bytes(), f
