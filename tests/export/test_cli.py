"""``prmflow export`` on the command line: what it writes, and exit 2 with one line for each refusal."""

from __future__ import annotations

import shutil

import pytest
from helpers import card

from prmflow.cli import main


def test_export_command_writes_the_files_and_the_card(mc_run, tmp_path, capsys):
    assert main(["export", str(mc_run), "--format", "openrlhf", "--out", str(tmp_path / "x"), "--label", "hard",
                 "--file-format", "jsonl", "--val-fraction", "0.2", "--seed", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["README.md", "train.jsonl", "validation.jsonl"]
    c = card(tmp_path / "x")
    assert (c["format"], c["label"], c["file_format"], c["split"]["seed"]) == ("openrlhf", "hard", "jsonl", 3)
    assert "wrote" in capsys.readouterr().out


@pytest.fixture
def incomplete_run(mc_run, tmp_path):
    copy = tmp_path / "incomplete"
    shutil.copytree(mc_run, copy)
    (copy / "_SUCCESS").unlink()
    return copy


REFUSALS = [
    (["--format", "csv"], "--format must be one of trl, openrlhf, math-shepherd, verl, prmflow, got 'csv'"),
    (["--format", "trl", "--label", "soft"], "--format trl takes boolean step labels only"),
    (["--format", "trl", "--label", "best"], "--label must be one of"),
    (["--format", "trl", "--sources", "nope"], "--sources names 'nope', which the run does not hold"),
    (["--format", "trl", "--sources", "add,"], "--sources and --methods take comma-separated non-empty names"),
    (["--format", "trl", "--min-weight", "abc"], "argument --min-weight: invalid float value: 'abc'"),
    (["--format", "trl", "--min-weight", "nan"], "--min-weight must be a finite number"),
    (["--format", "trl", "--val-fraction", "1"], "--val-fraction must be in [0, 1), got 1.0"),
    (["--format", "verl", "--min-weight", "1"], "--min-weight filters step labels, which --format verl does not export"),
    (["--format", "verl", "--label", "hard"], "--label hard does not apply to --format verl"),
    (["--format", "openrlhf", "--placeholder", "+"], "--placeholder must differ from the reward tokens"),
    (["--format", "trl", "--bogus"], "unrecognized arguments: --bogus"),
    (["--format", "openrlhf", "--label", "soft"], "OpenRLHF 0.9.5's ProcessRewardDataset puts labels into a Long tensor"),
    (["--format", "trl", "--after-first-error", "keep"], "--after-first-error must be one of truncate, negative, drop, got 'keep'"),
    (["--format", "verl", "--after-first-error", "drop"], "--after-first-error drop shapes step labels"),
    (["--format", "trl", "--tokenizer", "x"], "--tokenizer checks OpenRLHF's placeholder tokens"),
    (["--format", "openrlhf", "--tokenizer", "/nonexistent/tok"], "--tokenizer '/nonexistent/tok' cannot be loaded"),
    (["--format", "trl", "--license", "apache 2"], "--license must be a hub license id"),
    (["--format", "trl", "--language", "English"], "--language takes comma-separated ISO 639 codes"),
    (["--out", "x"], "the following arguments are required: --format"),
]


@pytest.mark.parametrize("args, message", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_refusals_are_exit_2_with_one_line(mc_run, tmp_path, capsys, args, message):
    argv = ["export", str(mc_run), *args]
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prmflow export: ") and message in err, err
    assert not (tmp_path / "x").exists()


def test_a_run_without_success_is_refused(incomplete_run, tmp_path, capsys):
    assert main(["export", str(incomplete_run), "--format", "trl", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "incomplete run (no _SUCCESS" in err
    assert not (tmp_path / "x").exists()


def test_an_existing_output_needs_overwrite(mc_run, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["export", str(mc_run), "--format", "trl", "--out", str(out)]) == 0
    first = (out / "train.parquet").read_bytes()
    assert main(["export", str(mc_run), "--format", "trl", "--out", str(out)]) == 2
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(mc_run), "--format", "trl", "--out", str(out), "--overwrite", "--seed", "5",
                 "--val-fraction", "0.5"]) == 0
    assert (out / "train.parquet").read_bytes() != first and card(out)["split"]["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no staging or replaced directory left


def test_exports_are_deterministic(mc_run, tmp_path):
    for name in ("a", "b"):
        assert main(["export", str(mc_run), "--format", "prmflow", "--out", str(tmp_path / name)]) == 0
    for f in ("train.parquet", "validation.parquet", "README.md"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
