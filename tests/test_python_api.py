"""The Python API at the top level, as docs/python-api.md uses it: prmflow.run with a dict or a path,
prmflow.connect, prmflow.export (the export package, callable), on a real Beam run of the fake policy;
an input whose rows all dead-letter is exit 1 from the command line, with its first reasons."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

import prmflow
from prmflow.cli import main
from prmflow.config import ConfigError


def _data(tmp_path):
    rows = [{"id": f"p{i}", "question": f"Add {i}, {i + 7} and {3 * i}.", "answer": f"#### {5 * i + 7}"}
            for i in range(6)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tmp_path) -> dict:
    return {
        "name": "api",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(_data(tmp_path))}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.2}},
        "sampling": {"n": 3, "template": "question-answer"},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 2},
    }


def test_top_level_names():
    assert dir(prmflow) == ["__version__", "connect", "export", "run"]
    assert callable(prmflow.export) and prmflow.export.ExportConfig  # the package, callable


def test_run_connect_export_from_a_dict(tmp_path):
    manifest = prmflow.run(config(tmp_path), output=tmp_path / "run")
    assert manifest["reconciliation"]["ok"]
    con = prmflow.connect(tmp_path / "run")
    assert con.execute("SELECT count(*) FROM trajectories").fetchone()[0] == 18  # no imported rationales: 6 x 3
    ids = {r[0] for r in con.execute("SELECT source_id FROM problems").fetchall()}
    assert ids == {f"p{i}" for i in range(6)}
    result = prmflow.export(tmp_path / "run", tmp_path / "trl", format="trl", val_fraction=0.0)
    assert (tmp_path / "trl" / "train.parquet").is_file() and result.counts["train"]["trajectories"] == 18


def test_run_from_a_path_equals_the_command(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    a = prmflow.run(path, output=tmp_path / "a")
    assert main(["run", str(path), "--output", str(tmp_path / "b")]) == 0
    for table in ("trajectories", "steps"):
        for shard in (tmp_path / "a" / table).glob("*.parquet"):
            assert shard.read_bytes() == (tmp_path / "b" / table / shard.name).read_bytes()
    assert a["config"] == json.loads((tmp_path / "b" / "manifest.json").read_text())["config"]


def test_a_bad_key_raises_before_any_work(tmp_path):
    bad = {**config(tmp_path), "sampling": {"n": "four"}}
    with pytest.raises(ConfigError, match=r"sampling\.n must be an integer, got 'four'"):
        prmflow.run(bad, output=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_input_whose_rows_all_dead_letter_exits_1_with_the_first_reasons(tmp_path):
    path = tmp_path / "c.yaml"
    cfg = config(tmp_path)
    cfg["inputs"][0]["format"] = "gsm8k"  # rows that have a question, as gsm8k wants, but ...
    cfg["inputs"][0]["fields"] = None
    rows = [{"problem": f"What is {i} + 1?", "solution": f"{i} + 1 = {i + 1}", "answer": str(i + 1)} for i in range(3)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "prmflow", "run", str(path), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("prmflow run: input")]
    assert len(lines) == 1 and "input 'add': all 3 rows were dead-lettered" in lines[0]
    assert "missing_field: field 'question' is missing" in lines[0]
    assert "fields: {prompt: problem, reference_answer: answer, solution: solution}" in lines[0]
    assert (tmp_path / "out" / "_SUCCESS").is_file()  # published: the dead letters are the result
