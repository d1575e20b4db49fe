"""An output can be neither misread nor destroyed: staging + publish, the lock, readers that need
``_SUCCESS``, and the writable check. Unit tests on ``pipelines/output.py``, then real runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prmflow.analysis import views
from prmflow.cli import main
from prmflow.config import ConfigError
from prmflow.pipelines import output
from prmflow.pipelines.common import SUCCESS, beam_options, unparseable_beam_args
from prmflow.pipelines.output import LOCK, STAGING_PREFIX, Holder, OutputLocked, PublishError, publishing
from prmflow.reaper import start_ticks
from prmflow.schemas import TABLES

# -- the publication protocol, without a pipeline ---------------------------------------------------


def _stage(staging: str, marker: str) -> None:
    """A stand-in for a run's output: one file per table, holding ``marker``, and a manifest."""
    for table in TABLES:
        path = Path(staging) / table / f"{table}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"marker": [marker]}), path)
    (Path(staging) / "manifest.json").write_text(json.dumps({"marker": marker}))


def _published(out: Path) -> dict[str, str]:
    return {t: pq.read_table(out / t).column("marker")[0].as_py() for t in TABLES}


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".prmflow") and p.name != output.MARKER)


def test_publish_moves_everything_and_marks_success_last(tmp_path):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-a") as staging:
        assert Path(staging).parent == out and Path(staging).name.startswith(STAGING_PREFIX)
        assert (out / LOCK).exists() and not (out / SUCCESS).exists()
        _stage(staging, "a")
    assert _published(out) == dict.fromkeys(TABLES, "a")
    assert json.loads((out / "manifest.json").read_text()) == {"marker": "a"}
    assert json.loads((out / SUCCESS).read_text())["config"] == "cfg-a"
    assert _leftovers(out) == []  # no lock, no staging, no replaced tables


def test_failing_rerun_leaves_the_last_good_output(tmp_path):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-a") as staging:
        _stage(staging, "good")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError, match="boom"), publishing(str(out), True, "cfg-b") as staging:
        _stage(staging, "half")  # written, then the run crashes before it completes
        raise RuntimeError("boom")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert _leftovers(out) == []


def test_publish_failing_part_way_keeps_both_outputs_and_says_where(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-a") as staging:
        _stage(staging, "old")
    moves = []
    real_move = output._move

    def failing_move(src, dst):  # the disk fills up after the old tables were moved aside
        if len(moves) == len(TABLES) + 3:  # _SUCCESS, the tables, the manifest aside; the first new table in
            raise OSError(28, "No space left on device")
        moves.append(src)
        real_move(src, dst)

    monkeypatch.setattr(output, "_move", failing_move)
    with pytest.raises(PublishError) as e, publishing(str(out), True, "cfg-b") as staging:
        _stage(staging, "new")
    replaced, kept = [out / n for n in _leftovers(out)]
    assert replaced.name.startswith(".prmflow-replaced-") and kept.name.startswith(STAGING_PREFIX)
    assert f"the new output is under {kept}, the previous one under {replaced}" in str(e.value)
    assert not (out / SUCCESS).exists() and not (out / LOCK).exists()  # unreadable, but not locked
    assert pq.read_table(replaced / "steps").column("marker")[0].as_py() == "old"
    assert pq.read_table(out / "problems").column("marker")[0].as_py() == "new"  # moved before the failure
    assert pq.read_table(kept / "steps").column("marker")[0].as_py() == "new"


def test_overwrite_false_refuses_a_finished_run_before_locking(tmp_path):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-a") as staging:
        _stage(staging, "a")
    with pytest.raises(FileExistsError, match="holds a finished run and output.overwrite is false"):
        with publishing(str(out), False, "cfg-b"):
            pass
    assert _published(out) == dict.fromkeys(TABLES, "a") and _leftovers(out) == []


def test_second_concurrent_run_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    with publishing(str(out), True, "cfg-a") as staging:
        with pytest.raises(OutputLocked) as e, publishing(str(out), True, "cfg-b"):
            pass
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(e.value)
        assert str(out / LOCK) in str(e.value)
        _stage(staging, "a")  # the holder is unaffected by the refusal
    assert _published(out) == dict.fromkeys(TABLES, "a")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _holder(**changes) -> dict:
    base = {"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00",
            "process_start": start_ticks(os.getpid()), "run_id": "r", "config": "c"}
    return {**base, **changes}


@pytest.mark.parametrize(
    "holder, stale",
    [
        (_holder(pid=None), True),                             # placeholder: replaced by a dead pid below
        (_holder(), False),                                     # this very process: alive
        (_holder(process_start=1), True),                       # the pid was reused by a newer process
        (_holder(pid=None, host="some-other-host"), False),     # another host: cannot tell, so held
    ],
    ids=["dead-pid", "live-pid", "reused-pid", "other-host"],
)
def test_stale_lock_detection(tmp_path, holder, stale):
    out = tmp_path / "out"
    out.mkdir()
    if holder["pid"] is None:
        holder = {**holder, "pid": _dead_pid()}
    (out / LOCK).write_text(json.dumps(holder))
    if stale:
        with publishing(str(out), True, "cfg") as staging:
            _stage(staging, "new")
        assert _published(out) == dict.fromkeys(TABLES, "new") and _leftovers(out) == []
    else:
        with pytest.raises(OutputLocked, match=f"pid {holder['pid']} on host {holder['host']}"):
            with publishing(str(out), True, "cfg"):
                pass
        assert json.loads((out / LOCK).read_text()) == holder  # someone else's lock is never removed


def test_unreadable_lock_is_stale_only_once_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text("")  # a run killed between creating its lock and writing it
    with pytest.raises(OutputLocked, match="still being written"), publishing(str(out), True, "c"):
        pass
    old = time.time() - 2 * output.UNREADABLE_LOCK_STALE_S
    os.utime(out / LOCK, (old, old))
    with publishing(str(out), True, "c") as staging:
        _stage(staging, "x")
    assert _leftovers(out) == []


def test_leftover_staging_of_a_killed_run_is_removed_by_the_next(tmp_path):
    out = tmp_path / "out"
    (out / f"{STAGING_PREFIX}killed" / "steps").mkdir(parents=True)
    with publishing(str(out), True, "c") as staging:
        _stage(staging, "x")
    assert _leftovers(out) == []


def test_a_signal_during_publishing_waits_for_it(tmp_path):
    """The CLI's handler asks defer_signal() first; a deferred signal is re-raised when publishing ends."""
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        with output._shielded():
            assert output.defer_signal(signal.SIGUSR1)
            assert seen == []
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [signal.SIGUSR1]
        assert not output.defer_signal(signal.SIGUSR1)  # outside a publication: handle it now
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _a_file(d: Path) -> Path:
    (d / "f").write_text("x")
    return d / "f"


@pytest.mark.parametrize(
    "make, message",
    [
        (_a_file, "output.dir must be a directory, got '{p}', which is a file"),
        (lambda d: _a_file(d) / "sub", "output.dir must be a writable directory, got '{p}'"),
    ],
    ids=["a-file", "below-a-file"],
)
def test_output_must_be_a_writable_directory(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as e, publishing(str(path), True, "c"):
        pass
    assert str(e.value).startswith(message.format(p=path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_read_only_output_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(ConfigError, match="output.dir must be a writable directory"):
        with publishing(str(tmp_path / "ro"), True, "c"):
            pass


# -- readers ----------------------------------------------------------------------------------------


@pytest.fixture
def finished(tmp_path) -> Path:
    out = tmp_path / "out"
    with publishing(str(out), True, "c") as staging:
        for table, (_, schema) in TABLES.items():
            path = Path(staging) / table / f"{table}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True)
            pq.write_table(schema.empty_table(), path)
    return out


def test_readers_need_success(finished, capsys):
    assert main(["sql", str(finished), "SELECT count(*) FROM steps"]) == 0
    assert capsys.readouterr().out.strip() == "0"
    (finished / SUCCESS).unlink()  # what a run killed while publishing leaves
    for argv in (["sql", str(finished), "SELECT count(*) FROM steps"], ["inspect", str(finished)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "incomplete run (no _SUCCESS" in err and "--partial" in err
    with pytest.raises(views.IncompleteOutput):
        views.connect(str(finished))


def test_partial_reads_with_a_warning(finished, capsys):
    (finished / SUCCESS).unlink()
    assert main(["sql", str(finished), "SELECT count(*) FROM steps", "--partial"]) == 0
    got = capsys.readouterr()
    assert got.out.strip() == "0" and got.err.startswith("WARNING:") and "incomplete" in got.err
    assert main(["inspect", "--partial", str(finished)]) == 0
    assert capsys.readouterr().out.startswith(f"WARNING: {str(finished)!r} holds an incomplete run")


def test_a_run_that_never_published_is_not_readable_even_partially(tmp_path, capsys):
    (tmp_path / f"{STAGING_PREFIX}x" / "steps").mkdir(parents=True)
    assert main(["sql", str(tmp_path), "SELECT 1", "--partial"]) == 2
    assert "holds no finished run yet" in capsys.readouterr().err


# -- Beam arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--direct_num_workers=2", "--direct_running_mode=multi_processing"], []),
        (["--runner", "FnApiRunner", "--job_endpoint=localhost:8099"], []),
        (["--flink_master=localhost:8081", "--parallelism=2"], []),            # runner options Beam declares
        (["--direct_num_worker=2"], ["'--direct_num_worker=2' (did you mean '--direct_num_workers'?)"]),
        (["--no_such_beam_flag"], ["'--no_such_beam_flag'"]),
        (["stray.yaml"], ["'stray.yaml'"]),                                    # a second positional argument
    ],
)
def test_unparseable_beam_args(args, expected):
    assert unparseable_beam_args(args) == expected


def test_beam_options_refuses_instead_of_warning():
    with pytest.raises(ConfigError, match=r"^unparseable Beam argument: '--direct_num_worker=2' \(did you mean"):
        beam_options(["--direct_num_worker=2"])
    assert beam_options(["--direct_num_workers=2"]).get_all_options()["direct_num_workers"] == 2


# -- real runs --------------------------------------------------------------------------------------

ARITH = """name: arith-{tag}
seed: {seed}
inputs:
  - {{name: arith, format: arith, count: {count}, seed: {seed}}}
outcome: {{labeler: exact}}
output: {{dir: {out}, num_shards: 2, overwrite: {overwrite}}}
"""


def _config(tmp_path: Path, tag: str, out: Path, count: int = 200, seed: int = 1, overwrite: str = "true") -> Path:
    path = tmp_path / f"{tag}.yaml"
    path.write_text(ARITH.format(tag=tag, out=out, count=count, seed=seed, overwrite=overwrite))
    return path


def _prmflow(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prmflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _wait_for(condition, what: str, proc: subprocess.Popen | None = None, limit_s: float = 300) -> None:
    """Polls for an event; the limit only turns a hang into a failure, it measures nothing."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _sql(out: Path, query: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prmflow", "sql", str(out), query, *extra],
                          capture_output=True, text=True)


def test_concurrent_run_is_refused_and_the_first_completes(tmp_path):
    out = tmp_path / "out"
    first = _prmflow("run", str(_config(tmp_path, "a", out, seed=1)))
    try:
        _wait_for(lambda: any(out.glob(f"{STAGING_PREFIX}*")), "the first run's staging directory", first)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, so the second surely meets its lock
        holder = Holder(**json.loads((out / LOCK).read_text()))
        second = subprocess.run([sys.executable, "-m", "prmflow", "run", str(_config(tmp_path, "b", out, seed=2))],
                                capture_output=True, text=True)
        first.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1
        assert f"in use by another prmflow run (pid {first.pid} on host {socket.gethostname()}, started " \
               f"{holder.started})" in second.stderr
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    # only the first run's problems, each once
    ids = pq.read_table(out / "trajectories", columns=["problem_id"]).column("problem_id").to_pylist()
    assert len(ids) == len(set(ids)) == 200
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["name"] == "arith-a" and manifest["reconciliation"]["ok"]
    assert _leftovers(out) == []


def test_killed_rerun_keeps_the_good_output_and_its_leftovers_are_cleared(tmp_path):
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "prmflow", "run", str(_config(tmp_path, "a", out))],
                          capture_output=True).returncode == 0
    good = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != output.MARKER}
    assert _sql(out, "SELECT count(*) FROM trajectories").stdout.strip() == "200"

    rerun = _prmflow("run", str(_config(tmp_path, "b", out, count=2000, seed=2)))
    _wait_for(lambda: any(out.glob(f"{STAGING_PREFIX}*")), "the rerun's staging directory", rerun)
    rerun.kill()  # kill -9: no handler runs, the lock and staging stay behind
    rerun.communicate()
    assert (out / LOCK).exists() and any(out.glob(f"{STAGING_PREFIX}*"))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and not p.name.startswith(".prmflow") and STAGING_PREFIX not in str(p)} == good
    assert _sql(out, "SELECT count(*) FROM trajectories").stdout.strip() == "200"  # still the good run

    # the next run takes over the dead run's lock and removes its staging directory
    third = subprocess.run([sys.executable, "-m", "prmflow", "run", str(_config(tmp_path, "c", out, seed=3))],
                           capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    assert f"removing a stale lock: pid {rerun.pid} on host" in third.stderr
    assert _leftovers(out) == []
    assert json.loads((out / "manifest.json").read_text())["config"]["name"] == "arith-c"


def test_output_that_is_a_file_fails_before_the_pipeline(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    got = subprocess.run([sys.executable, "-m", "prmflow", "run", str(_config(tmp_path, "a", target))],
                         capture_output=True, text=True)
    assert got.returncode == 2
    assert got.stderr == f"prmflow run: output.dir must be a directory, got '{target}', which is a file\n"
    assert target.read_text() == "not a directory"


def test_mistyped_beam_flag_fails_before_the_pipeline(tmp_path):
    out = tmp_path / "out"
    got = subprocess.run([sys.executable, "-m", "prmflow", "run", str(_config(tmp_path, "a", out)),
                          "--direct_num_worker=2"], capture_output=True, text=True)
    assert got.returncode == 2
    assert got.stderr == ("prmflow run: unparseable Beam argument: '--direct_num_worker=2' "
                          "(did you mean '--direct_num_workers'?)\n")
    assert not out.exists()  # nothing was created, not even the lock
