"""`prmflow run` never deletes what it did not write (issue 24, "Outputs that never delete what they
did not write"): one test per case, each checking that the user's files and the previous good output
are intact afterwards. Real runs (import-only arith runs take a second or two), real publications.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from prmflow.analysis import views
from prmflow.pipelines import common, output
from prmflow.pipelines.label import run
from prmflow.pipelines.output import MARKER, SUCCESS, publishing
from prmflow.schemas import TABLES
from tests.pipelines.test_output_safety import _published, _stage

REPO = Path(__file__).resolve().parents[2]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def arith_config(path: Path, out: Path | None, count: int = 30, seed: int = 1, overwrite: bool = True,
                 inputs: list | None = None) -> Path:
    config = {"name": f"arith-{seed}", "seed": seed,
              "inputs": inputs or [{"name": "arith", "format": "arith", "count": count, "seed": seed}],
              "outcome": {"labeler": "exact"}, "output": {"num_shards": 1, "overwrite": overwrite}}
    if out is not None:
        config["output"]["dir"] = str(out)
    path.write_text(yaml.safe_dump(config))
    return path


def prmflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "prmflow", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_prmflow_did_not_write_is_refused(tmp_path, overwrite):
    """The input's own directory as output.dir: it holds problems/in.jsonl, manifest.json, steps/ and
    _cache/, none of them prmflow's. Refused with one line, exit 2, every file as it was."""
    data = tmp_path / "data"
    (data / "problems").mkdir(parents=True)
    (data / "problems" / "in.jsonl").write_text(json.dumps({"q": "What is 2 + 2?", "a": "4"}) + "\n")
    (data / "manifest.json").write_text('{"mine": true}\n')
    (data / "steps").mkdir()
    (data / "steps" / "notes.txt").write_text("my notes\n")
    (data / "_cache").mkdir()
    (data / "_cache" / "index.db").write_text("another tool's cache\n")
    before = files(data)
    inputs = [{"name": "mine", "format": "jsonl", "path": str(data / "problems" / "in.jsonl"),
               "fields": {"prompt": "q", "reference_answer": "a"}}]
    got = prmflow("run", str(arith_config(tmp_path / "c.yaml", data, overwrite=overwrite, inputs=inputs)))
    assert got.returncode == 2, got.stderr
    assert got.stderr.count("\n") == 1 and "output.dir must be a new or empty directory or a prmflow output" \
        in got.stderr, got.stderr
    assert files(data) == before
    assert sorted(p.name for p in data.iterdir()) == ["_cache", "manifest.json", "problems", "steps"]


def test_an_unreconciled_run_is_not_published(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert run([str(arith_config(tmp_path / "a.yaml", out, seed=1))])["reconciliation"]["ok"]
    good = files(out)
    real = common.reconcile

    def broken(counts):  # the counts of a run that lost rows somewhere
        return {**real(counts), "ok": False}

    monkeypatch.setattr(common, "reconcile", broken)
    manifest = run([str(arith_config(tmp_path / "b.yaml", out, seed=2))])
    assert not manifest["reconciliation"]["ok"]
    err = capsys.readouterr().err
    assert "NOT published, the counts do not reconcile" in err
    kept = [p for p in out.iterdir() if p.name.startswith(output.FAILED_PREFIX)]
    assert len(kept) == 1 and str(kept[0]) in err
    assert {k: v for k, v in files(out).items() if not k.startswith(output.FAILED_PREFIX)} == good
    views.check_complete(str(out))  # still the first run, complete
    assert views.check_complete(str(kept[0]), partial=True).startswith("WARNING")  # inspectable with --partial
    assert json.loads((kept[0] / "manifest.json").read_text())["config"]["name"] == "arith-2"
    monkeypatch.setattr(common, "reconcile", real)
    assert run([str(arith_config(tmp_path / "c.yaml", out, seed=3))])["reconciliation"]["ok"]
    assert not [p for p in out.iterdir() if p.name.startswith(output.FAILED_PREFIX)]  # cleared by the next run


# -- a publication cut short by SIGKILL ----------------------------------------------------------------


KILLER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from tests.pipelines.test_output_safety import _stage
    from prmflow.pipelines import output
    moves, after = [], int(sys.argv[1])
    real_move, real_delete = output._move, output._delete

    def move(src, dst):
        if len(moves) == after:
            os._exit(9)  # what SIGKILL leaves: no finally, no handler, no cleanup
        moves.append(src)
        real_move(src, dst)

    def delete(paths):
        if any(os.path.basename(p).startswith(output.REPLACED_PREFIX) for p in paths):
            os._exit(9)  # killed after _SUCCESS, before the old tables are deleted
        real_delete(paths)

    output._move, output._delete = move, delete
    with output.publishing(sys.argv[2], True, "cfg-new") as staging:
        _stage(staging, "new")
""")

MOVES = 1 + len(TABLES) + 1 + 1 + len(TABLES) + 1  # old: _SUCCESS, tables, manifest, report; new: tables, manifest


@pytest.mark.parametrize("after", [0, 1, 5, 9, 12, MOVES - 1, "cleanup"])  # moves done before the kill
def test_a_publication_killed_part_way_is_rolled_back_by_the_next_run(tmp_path, after):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-old") as staging:
        _stage(staging, "old")
    (out / "report.html").write_text("<html>the old run's report</html>")
    old_success = json.loads((out / SUCCESS).read_text())
    killer = subprocess.run([sys.executable, "-c", KILLER.format(repo=str(Path(__file__).parents[2])),
                             str(10**6 if after == "cleanup" else after), str(out)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killer.returncode == 9, killer.stderr
    # then a run that fails early: it must leave a readable output behind, the previous one
    with pytest.raises(RuntimeError, match="early"), publishing(str(out), True, "cfg-next"):
        raise RuntimeError("fails early")
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".prmflow") and p.name != MARKER)
    assert leftovers == []
    views.check_complete(str(out))  # _SUCCESS is back
    if after == "cleanup":  # the new output was complete and marked: it stays, only leftovers go
        assert _published(out) == dict.fromkeys(TABLES, "new")
        assert not (out / "report.html").exists()  # the old run's report went with the old run
    else:
        assert _published(out) == dict.fromkeys(TABLES, "old")
        assert json.loads((out / SUCCESS).read_text()) == old_success
        assert json.loads((out / "manifest.json").read_text()) == {"marker": "old"}
        assert (out / "report.html").read_text() == "<html>the old run's report</html>"


def test_a_new_run_takes_the_stale_report_away_with_the_old_output(tmp_path):
    out = tmp_path / "out"
    run([str(arith_config(tmp_path / "a.yaml", out, seed=1))])
    (out / "report.html").write_text("<html>describes arith-1</html>")
    run([str(arith_config(tmp_path / "b.yaml", out, seed=2))])
    assert not (out / "report.html").exists()


# -- paths ---------------------------------------------------------------------------------------------


def test_output_through_a_symlink_and_dotdot_is_resolved_once(tmp_path):
    """``LINK/../o``: the kernel resolves LINK first, so the output is ``real/../o`` = ``parent-of-real/o``;
    the lock, the staging, the publication and the cache all go there, nothing to the lexical ``o``."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    lexical = tmp_path / "o"
    physical = tmp_path / "a" / "o"
    manifest = run([str(arith_config(tmp_path / "c.yaml", None)), "--output", str(tmp_path / "link" / ".." / "o")])
    assert manifest["reconciliation"]["ok"]
    assert (physical / SUCCESS).is_file() and (physical / MARKER).is_file()
    assert not lexical.exists()
    assert not (physical / "_cache").exists()  # the cache it made, and only that, is gone


def test_an_input_glob_covering_the_output_does_not_read_it(tmp_path, caplog):
    d = tmp_path / "d"
    d.mkdir()
    rows = [{"q": f"What is {i} + {i}?", "a": str(2 * i)} for i in range(7)]
    (d / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inputs = [{"name": "all", "format": "jsonl", "path": str(d / "**"), "fields": {"prompt": "q", "reference_answer": "a"}}]
    config = arith_config(tmp_path / "c.yaml", d / "out", inputs=inputs)
    first = run([str(config)])
    assert first["counts"]["records_read"] == {"all": 7}
    second = run([str(config)])  # d/** now also matches d/out's lock, manifest, shards, _SUCCESS
    assert second["counts"]["records_read"] == {"all": 7}
    assert second["reconciliation"]["ok"] and not second["counts"].get("records_dead")
    assert any("inside the run's own output directory" in r.getMessage() for r in caplog.records)


def test_a_full_disk_fails_in_one_line_and_keeps_the_previous_output(tmp_path):
    """On a 256 KiB tmpfs (root only): a small run fits and is published; a big one fills the disk
    mid-pipeline (Beam wraps the worker's OSError): exit 1, one line, the small run as it was."""
    fs = tmp_path / "tiny"
    fs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(fs)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        out = fs / "o"
        small = prmflow("run", str(arith_config(tmp_path / "small.yaml", out, count=5)))
        assert small.returncode == 0, small.stderr
        good = files(out)
        big = prmflow("run", str(arith_config(tmp_path / "big.yaml", out, count=3000, seed=2)))
        assert big.returncode == 1
        lines = [line for line in big.stderr.splitlines() if " INFO " not in line]
        assert lines == ["prmflow run: [Errno 28] writing the run's output failed: No space left on device"]
        assert files(out) == good  # no staging, no lock, the small run published
    finally:
        subprocess.run(["umount", str(fs)], check=True)
