"""SIGINT/SIGTERM stop ``prmflow run`` with exit 130/143 and one line, and no child process outlives
the run, not even after ``kill -9``. Real processes throughout; every wait is for an event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from prmflow.pipelines.output import LOCK, STAGING_PREFIX
from prmflow.reaper import descendants, process_table

# ProcessBench gsm8k, labeled by math-verify under a time limit, so the run has a child process
# (the time-limit worker) to clean up, and takes long enough to be interrupted mid-pipeline.
PROCESSBENCH = """name: signals
seed: 0
inputs:
  - name: processbench-gsm8k
    format: processbench
    path: {data}/processbench/gsm8k.json
    references: {{format: gsm8k, path: {data}/gsm8k/test.jsonl}}
segment: {{strategy: given}}
outcome: {{labeler: math, options: {{timeout_s: 5}}}}
output: {{dir: {out}, num_shards: 2}}
"""

# A child that ignores SIGINT and SIGTERM and never looks at its parent: only an explicit SIGKILL
# of its pid ends it (an engine process that does not notice its parent died behaves the same).
STUBBORN = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)")


def _wait_for(condition, what: str, proc: subprocess.Popen | None = None, limit_s: float = 300):
    """Polls for an event; the limit only turns a hang into a failure, it measures nothing."""
    deadline = time.monotonic() + limit_s
    while True:
        found = condition()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _running(procs: dict[int, int]) -> dict[int, int]:
    """The processes of ``procs`` that still run as themselves (a zombie has finished running)."""
    table = process_table()
    alive = {}
    for pid, ticks in procs.items():
        if pid in table and table[pid][1] == ticks:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state not in ("Z", "X"):
                alive[pid] = ticks
    return alive


def _spawned_children(pid: int) -> dict[int, int]:
    """``pid``'s descendants once one of them is a multiprocessing child (the time-limit worker)."""
    tree = descendants(pid)
    for child in tree:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    return tree
        except OSError:
            pass
    return {}


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_a_run_with_one_line_and_no_children(tmp_path, shared_data, signum, code):
    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text(PROCESSBENCH.format(data=shared_data, out=out))
    run = subprocess.Popen([sys.executable, "-m", "prmflow", "run", str(config)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for(lambda: any(out.glob(f"{STAGING_PREFIX}*")), "the staging directory", run)
        children = _wait_for(lambda: _spawned_children(run.pid), "the time-limit child process", run)
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == code
    name = signal.Signals(signum).name
    assert stderr == f"prmflow run: stopped by {name}; nothing was published, {out} is as it was\n"
    _wait_for(lambda: not _running(children), "the run's child processes to go", limit_s=60)
    assert sorted(p.name for p in out.iterdir()) == []  # no lock, no staging, nothing published


def _parent_script(tmp_path: Path, body: str, after_child: str = "") -> Path:
    """A process that starts a stubborn child (``body`` before it, ``after_child`` after), prints the
    child's pid, then waits to be signalled."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        {body}
        child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        {after_child}
        print(child.pid, flush=True)
        time.sleep(3600)
    """))
    return script


def _start(script: Path) -> tuple[subprocess.Popen, dict[int, int]]:
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    child = int(parent.stdout.readline())
    ticks = process_table()[child][1]
    return parent, {child: ticks}


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_handler_kills_children_that_ignore_signals(tmp_path, signum, code):
    script = _parent_script(tmp_path, "from prmflow.cli import _Stopper; _Stopper('test').install()")
    parent, child = _start(script)
    try:
        assert _running(child)
        parent.send_signal(signum)
        _, stderr = parent.communicate(timeout=300)
    finally:
        parent.kill()
        for pid in _running(child):
            os.kill(pid, signal.SIGKILL)
    assert parent.returncode == code
    assert stderr == f"prmflow test: stopped by {signal.Signals(signum).name}\n"
    _wait_for(lambda: not _running(child), "the stubborn child to go", limit_s=60)


def test_watchdog_kills_children_after_kill_9(tmp_path):
    # start_watchdog() returns once the watchdog has recorded the tree, which holds the child by then
    script = _parent_script(tmp_path, "", after_child="from prmflow.reaper import start_watchdog; start_watchdog()")
    parent, child = _start(script)
    try:
        parent.kill()
        parent.communicate(timeout=60)
        _wait_for(lambda: not _running(child), "the watchdog to kill the orphaned child", limit_s=60)
    finally:
        for pid in _running(child):
            os.kill(pid, signal.SIGKILL)


def test_no_watchdog_no_cleanup(tmp_path):
    """The control for the test above: without the watchdog, the same child survives its parent."""
    parent, child = _start(_parent_script(tmp_path, ""))
    try:
        parent.kill()
        parent.communicate(timeout=60)
        assert _running(child)
    finally:
        for pid in _running(child):
            os.kill(pid, signal.SIGKILL)


def test_lock_is_released_after_a_signal(tmp_path):
    """The handler aborts the run's publication: no lock is left to refuse the next run."""
    out = tmp_path / "out"
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from prmflow.cli import _setup_logging, _Stopper
        _setup_logging()
        from prmflow.pipelines.output import publishing
        _Stopper('run').install()
        with publishing({str(out)!r}, True, "c") as staging:
            print(staging, flush=True)
            time.sleep(3600)
    """))
    holder = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        staging = Path(holder.stdout.readline().strip())
        assert staging.is_dir() and (out / LOCK).exists()
        holder.send_signal(signal.SIGTERM)
        _, stderr = holder.communicate(timeout=300)
    finally:
        holder.kill()
    assert holder.returncode == 143
    assert stderr == f"prmflow run: stopped by SIGTERM; nothing was published, {out} is as it was\n"
    assert list(out.iterdir()) == []
