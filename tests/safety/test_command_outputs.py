"""`export`, `train-prm`, `report`, `calibrate`, `sql` and `inspect` never delete what they did not
write, read run paths literally and print data safely (issue 24): one test per case, each checking
that the user's files and the previous good output are intact afterwards.

One small real run is made per module, in ``runs/exp[1]`` beside a sibling ``runs/exp1`` (the names a
DuckDB glob confuses), with a source named ``a$^$b`` (invalid mathtext) and problem texts holding
terminal control sequences.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prmflow.cli import main
from prmflow.config import ConfigError
from prmflow.pipelines.label import run

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "What is 2 + 2?\x1b]52;c;cHduZWQ=\x07 \x1b[2J\rhidden\x1b[31m"
"""OSC 52 (write the clipboard), BEL, clear screen, a carriage return over the line, a colour."""
SOURCE = "a$^$b"


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(root: Path, out: Path, count: int) -> Path:
    hostile = root / "hostile.jsonl"
    wrong = {"q": "What is 3 + 3?", "a": "6", "steps": ["3 + 3 = 7", "The answer is 7."], "gold": [0, 0],
             "go": 0}
    hostile.write_text(json.dumps({"q": HOSTILE, "a": "4", "steps": ["2 + 2 = 4", "The answer is 4."]}) + "\n"
                       + json.dumps(wrong) + "\n"  # gold-wrong, so that calibrate has both kinds
                       + "{not json \x1b]0;title\x07\n")
    config = {"name": out.name, "seed": 1,
              "inputs": [{"name": SOURCE, "format": "arith", "count": count, "seed": 1},
                         {"name": "esc", "format": "jsonl", "path": str(hostile), "import_solutions": True,
                          "fields": {"prompt": "q", "reference_answer": "a", "steps": "steps", "gold_step_labels": "gold",
                                     "gold_outcome": "go"}}],
              "outcome": {"labeler": "exact"}, "output": {"num_shards": 1}}
    path = root / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run([str(path), "--output", str(out)])["reconciliation"]["ok"]
    assert not (out / ".prmflow.lock").exists()  # released: its delete once went through a glob
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("safety")
    _run(root, root / "runs" / "exp[1]", 24)
    _run(root, root / "runs" / "exp1", 11)
    return root / "runs"


@pytest.fixture(scope="module")
def export_dir(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "gold"
    assert main(["export", str(runs / "exp[1]"), "--format", "prmflow", "--label", "gold", "--out", str(out)]) == 0
    return out


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


# -- glob characters in run paths ------------------------------------------------------------------------


def test_bracketed_run_paths_are_read_literally(runs, capsys, export_dir):
    assert main(["sql", str(runs / "exp[1]"), "SELECT count(*) FROM problems WHERE source = 'a$^$b'"]) == 0
    assert capsys.readouterr().out.strip() == "24"  # not exp1's 11
    assert main(["sql", str(runs / "exp1"), "SELECT count(*) FROM problems WHERE source = 'a$^$b'"]) == 0
    assert capsys.readouterr().out.strip() == "11"
    assert main(["sql", str(runs / "e*"), "SELECT count(*) FROM problems"]) == 2  # no run is called e*
    assert "is not a prmflow output" in one_line(capsys.readouterr().err)
    import pyarrow.parquet as pq

    exported = sum(pq.read_metadata(export_dir / f"{split}.parquet").num_rows for split in ("train", "validation"))
    assert exported > 11 + 3  # more trajectories than exp1 holds: exp[1]'s were exported
    assert main(["inspect", str(runs / "exp[1]")]) == 0
    assert "problems  trajectories" in capsys.readouterr().out


# -- export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["run", "parent", "inside"])
def test_export_never_replaces_the_run_or_its_siblings(runs, capsys, where):
    run_dir = runs / "exp[1]"
    out = {"run": run_dir, "parent": runs, "inside": run_dir / "steps"}[where]
    before = files(runs)
    assert main(["export", str(run_dir), "--format", "prmflow", "--label", "gold", "--out", str(out),
                 "--overwrite"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "the run directory" in err and "write the output somewhere else" in err
    assert files(runs) == before


def test_export_overwrite_replaces_only_an_earlier_export(runs, tmp_path, capsys, export_dir):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    assert main(["export", str(runs / "exp[1]"), "--format", "prmflow", "--label", "gold", "--out", str(mine),
                 "--overwrite"]) == 2
    assert "holds files this command did not write" in one_line(capsys.readouterr().err)
    assert (mine / "thesis.tex").read_text() == "months of work"
    again = tmp_path / "again"
    for _ in range(2):  # an earlier export is replaced
        assert main(["export", str(runs / "exp[1]"), "--format", "prmflow", "--label", "gold", "--out", str(again),
                     "--overwrite"]) == 0
    assert files(again) == files(export_dir)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_an_export_killed_between_its_renames_is_restored_by_the_next(runs, tmp_path, capsys, export_dir):
    out = tmp_path / "gold"
    assert main(["export", str(runs / "exp[1]"), "--format", "prmflow", "--label", "gold", "--out", str(out)]) == 0
    good = files(out)
    pid = _dead_pid()
    out.rename(tmp_path / f".gold.replaced-{pid}")  # SIGKILL after the first rename of replace_dir
    (tmp_path / f".gold.export-{pid}").mkdir()
    (tmp_path / f".gold.export-{pid}" / "train.parquet").write_text("half")
    capsys.readouterr()
    # the next export fails early (no such run), yet it restores the previous export first
    assert main(["export", str(runs / "missing"), "--format", "prmflow", "--out", str(out), "--overwrite"]) == 2
    assert files(out) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold"]


# -- train-prm ---------------------------------------------------------------------------------------------


def _train_config(data: Path, output: Path, **extra):
    from prmflow.prm.config import parse_train_config

    return parse_train_config({"data": str(data), "output": str(output), "epochs": 1, "batch_size": 8,
                               "max_length": 64, "device": "cpu", "overwrite": True, **extra})


@pytest.fixture
def no_training(monkeypatch):
    """Any check that comes after loading the tokenizer and model came too late."""
    from prmflow.prm import train as train_module

    def refuse(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "load_tokenizer", refuse)
    return train_module


@pytest.mark.parametrize("where", ["data", "parent"])
def test_train_prm_never_writes_over_its_data(export_dir, no_training, where):
    before = files(export_dir.parent)
    output = export_dir if where == "data" else export_dir.parent
    with pytest.raises(FileExistsError, match="the training data"):
        no_training.train(_train_config(export_dir, output), progress=False)
    assert files(export_dir.parent) == before


def test_train_prm_with_an_unwritable_output_fails_before_training(export_dir, tmp_path, no_training):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="cannot be written .*nothing was trained"):
        no_training.train(_train_config(export_dir, tmp_path / "a-file" / "prm"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_train_prm_with_a_full_output_fails_before_training(export_dir, tmp_path, no_training, monkeypatch):
    real = no_training.shutil.disk_usage
    monkeypatch.setattr(no_training.shutil, "disk_usage", lambda p: real(p)._replace(free=4096))
    with pytest.raises(ConfigError, match="needs at least .* MiB, 0 MiB are free there; nothing was trained"):
        no_training.train(_train_config(export_dir, tmp_path / "prm"), progress=False)
    assert list(tmp_path.iterdir()) == []


# -- report and calibrate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["manifest.json", ".", "steps/x.html"])
def test_report_out_never_points_into_the_run(runs, capsys, target):
    run_dir = runs / "exp1"
    before = files(runs)
    assert main(["report", str(run_dir), "--out", str(run_dir / target)]) == 2
    one_line(capsys.readouterr().err)
    assert files(runs) == before


def test_report_out_never_replaces_a_file_it_did_not_write(runs, tmp_path, capsys):
    mine = tmp_path / "notes.html"
    mine.write_text("<p>mine</p>")
    assert main(["report", str(runs / "exp1"), "--out", str(mine)]) == 2
    assert "is not a prmflow report" in one_line(capsys.readouterr().err)
    assert mine.read_text() == "<p>mine</p>"
    page = tmp_path / "page.html"
    assert main(["report", str(runs / "exp1"), "--out", str(page)]) == 0
    assert main(["report", str(runs / "exp1"), "--out", str(page)]) == 0  # its own page: replaced


def test_report_with_a_dollar_source_and_the_run_id(runs, tmp_path):
    page = tmp_path / "r.html"
    assert main(["report", str(runs / "exp[1]"), "--out", str(page)]) == 0  # mathtext would raise on a$^$b
    run_id = json.loads((runs / "exp[1]" / "_SUCCESS").read_text())["run_id"]
    assert f'<meta name="prmflow-run-id" content="{run_id}">' in page.read_text()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_report_and_calibrate_on_a_full_disk(runs, tmp_path, capsys, monkeypatch):
    """ENOSPC while writing: exit 1, one line, the previous file as it was, no hidden temp file."""
    import prmflow.safeio

    run_dir = runs / "exp1"
    page = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(page)]) == 0
    good_page, good_run = page.read_bytes(), files(run_dir)
    capsys.readouterr()
    monkeypatch.setattr(prmflow.safeio.os, "fsync", _enospc)
    assert main(["report", str(run_dir), "--out", str(page)]) == 1
    assert "No space left on device" in one_line(capsys.readouterr().err)
    assert page.read_bytes() == good_page and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    assert main(["calibrate", str(run_dir)]) == 1
    assert "No space left on device" in capsys.readouterr().err.splitlines()[-1]
    assert files(run_dir) == good_run


def test_report_on_a_real_full_filesystem(runs, tmp_path, capsys):
    """The same on a 16 KiB tmpfs (root only; elsewhere the injected ENOSPC above covers it)."""
    fs = tmp_path / "tiny"
    fs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(fs)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        assert main(["report", str(runs / "exp1"), "--out", str(fs / "r.html")]) == 1
        assert "No space left on device" in one_line(capsys.readouterr().err)
        assert list(fs.iterdir()) == []
    finally:
        subprocess.run(["umount", str(fs)], check=True)


# -- what sql and inspect print -------------------------------------------------------------------------------


CONTROLS = ("\x1b", "\x07", "\r", "\x9b")


def test_sql_and_inspect_escape_terminal_control_characters(runs, capsys):
    run_dir = str(runs / "exp[1]")
    assert main(["sql", run_dir, "SELECT prompt FROM problems WHERE source = 'esc' AND prompt LIKE 'What is 2%'"]) == 0
    scalar = capsys.readouterr().out
    assert scalar == HOSTILE.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\r", "\\x0d") + "\n"
    assert main(["sql", run_dir, "SELECT source, prompt FROM problems ORDER BY source DESC LIMIT 2"]) == 0
    table = capsys.readouterr().out
    assert main(["sql", run_dir, "SELECT raw, detail FROM dead_letters"]) == 0
    dead = capsys.readouterr().out
    assert main(["inspect", run_dir]) == 0
    summary = capsys.readouterr().out
    for text in (scalar, table, dead, summary):
        assert not any(c in text for c in CONTROLS), text
    assert "\\x1b]52;c;" in table and "\\x1b]0;title\\x07" in dead


# -- sql --confined ---------------------------------------------------------------------------------------------


def test_sql_confined_reads_the_run_and_nothing_else(runs, tmp_path, capsys):
    run_dir = str(runs / "exp[1]")
    assert main(["sql", run_dir, "SELECT count(*) FROM steps", "--confined"]) == 0
    assert int(capsys.readouterr().out) > 0
    for query in ("SELECT * FROM read_csv('/etc/passwd')",
                  f"COPY (SELECT 1) TO '{tmp_path / 'leak.csv'}'",
                  f"ATTACH '{tmp_path / 'x.duckdb'}'",
                  "SET enable_external_access = true"):
        assert main(["sql", run_dir, query, "--confined"]) == 2, query
        capsys.readouterr()
    assert list(tmp_path.iterdir()) == []
    assert main(["sql", run_dir, "SELECT count(*) FROM read_csv('/etc/passwd')"]) == 0  # unconfined: documented


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(runs, tmp_path):
    from prmflow.safeio import atomic_write_text

    page = tmp_path / "r.html"
    (tmp_path / f".r.html.tmp-{_dead_pid()}").write_text("half a page")  # SIGKILL mid-write
    (tmp_path / f".r.html.tmp-{os.getpid()}-other").write_text("not ours")
    atomic_write_text(page, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".r.html.tmp-{os.getpid()}-other", "r.html"]
