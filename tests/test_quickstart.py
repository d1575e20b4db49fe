"""The quick start followed literally: its commands, read from the README's quickstart block (or
docs/quickstart.md), run one by one in a copy of the repository's examples, on SmolLM2 (what
``make models`` builds) and the natural JSONL of examples/data; a TRL file comes out that TRL's own
PRMTrainer tokenizes with one label per step."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest
from quickstart_steps import REPO, quickstart_commands

SETUP = {
    "make models": "the smollm2_dir fixture: what `make models` built (an error, not a skip, if it has not)",
    ". .venv/bin/activate": "a `prmflow` on PATH running this interpreter (the test's virtual environment)",
}


def test_the_quick_start_has_only_steps_this_test_follows():
    commands = quickstart_commands()
    assert commands[0] == "make models"
    for command in commands:
        assert command in SETUP or command.startswith("prmflow "), f"a quick start step the test does not follow: {command}"
    assert any(c.startswith("prmflow export ") and "--format trl" in c for c in commands)


@pytest.fixture
def workdir(tmp_path, smollm2_dir):
    """A directory laid out like the checkout for the quick start: its examples, and .cache/models
    holding the converted SmolLM2 (linked, not copied)."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / ".cache" / "models").mkdir(parents=True)
    (tmp_path / ".cache" / "models" / smollm2_dir.name).symlink_to(smollm2_dir)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "prmflow"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m prmflow \"$@\"\n")
    shim.chmod(0o755)
    return tmp_path


@pytest.mark.engine
def test_the_quick_start_gives_a_trainable_trl_file(workdir):
    env = {**os.environ, "PATH": f"{workdir / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    for command in quickstart_commands():
        if command in SETUP:
            continue
        done = subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=3000)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if command.startswith("prmflow inspect "):
            assert "Policy pass rate without gold" in done.stdout
    run_dir = workdir / "out" / "my-chat-model"
    assert (run_dir / "_SUCCESS").is_file() and (run_dir / "report.html").is_file()
    assert "trajectory-browser" in (run_dir / "report.html").read_text(encoding="utf-8")

    # a trainable file: TRL's columns, loaded with `datasets`, tokenized by TRL's own PRMTrainer
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl.experimental.prm import PRMTrainer

    out = workdir / "out" / "my-chat-model-trl"
    train = Dataset.from_parquet(str(out / "train.parquet"), cache_dir=str(workdir / "hf-cache"))
    assert {"prompt", "completions", "labels"} <= set(train.column_names) and len(train) > 0
    tokenizer = AutoTokenizer.from_pretrained(workdir / ".cache" / "models" / "smollm2-135m-instruct")
    for row in train:
        assert len(row["completions"]) == len(row["labels"]) > 0
        tokens = PRMTrainer.tokenize_row(row, tokenizer, "\n", max_length=None, max_completion_length=None,
                                         train_on_last_step_only=False, is_eval=False)
        assert sum(1 for v in tokens["labels"] if v != -100) == len(row["completions"])
    assert "trl" in (out / "README.md").read_text(encoding="utf-8").lower()
