"""A run's child processes: find them, kill them, and a watchdog that kills them if the run dies.

An engine's worker (vLLM's EngineCore without in-process mode, Beam's worker processes, the
labelers' time-limit child) is a child the run does not start itself, so it cannot be given
``PR_SET_PDEATHSIG``; and that flag fires when the *thread* that forked exits, which under Beam's
thread pools is not the run's end. Instead the process tree is read from ``/proc`` (Linux):

- on SIGINT/SIGTERM the CLI kills every descendant before it exits (``kill_processes(descendants())``);
- ``prmflow run`` starts ``python -I -S reaper.py PID``, which records PID's tree every
  ``WATCH_INTERVAL_S`` and, once PID is gone (``kill -9``, the OOM killer), kills what it recorded.

Stdlib only, and runnable as a script: the watchdog imports nothing of prmflow, so it costs a bare
interpreter (~10 MB), not the run's imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# How often the watchdog records the tree: a child started and orphaned within one interval of a
# kill -9 can escape it.
WATCH_INTERVAL_S = 0.5


def _stat_fields(stat: str) -> list[str]:
    # The command name (field 2) may hold spaces and ')'; after its last ')' come state (field 3),
    # ppid (4), ..., starttime (22).
    return stat.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (/proc); None if it is gone or there is no /proc.
    With the pid, it names a process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(_stat_fields(f.read().decode("ascii", "replace"))[19])
    except (OSError, IndexError, ValueError):
        return None


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start ticks) for every process, from /proc (empty where there is none)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue  # exited meanwhile
        fields = _stat_fields(stat)
        table[int(name)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(pid: int, table: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """Every process below ``pid`` -> its start ticks (to recognise it later despite pid reuse)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    found: dict[int, int] = {}
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if p not in found:
            found[p] = table[p][1]
            todo += children.get(p, [])
    return found


def kill_processes(procs: dict[int, int]) -> list[int]:
    """SIGKILL each process that is still the same process (same start ticks); returns their pids.

    SIGKILL, not SIGTERM: an engine's own shutdown handler would log over the one line the user
    gets, and a child with nothing to save needs no grace period."""
    current = process_table()
    killed = []
    for pid, ticks in procs.items():
        if pid in current and current[pid][1] == ticks:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


def watch(parent: int) -> None:
    """Record ``parent``'s process tree until ``parent`` is gone, then kill what is left of it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the run's to handle
    me = os.getpid()
    known: dict[int, int] = {}
    while os.getppid() == parent:  # we are reparented once the parent has died
        table = process_table()
        # Keep what was seen before and still runs: a grandchild whose own parent exited has left
        # the tree, but is still the run's.
        known = {p: t for p, t in known.items() if p in table and table[p][1] == t}
        known.update(descendants(parent, table))
        known.pop(me, None)
        if not sys.stdout.closed:  # start_watchdog() waits for this: the parent's tree is recorded
            print("watching", flush=True)
            sys.stdout.close()
        time.sleep(WATCH_INTERVAL_S)
    kill_processes(known)


def start_watchdog() -> subprocess.Popen | None:
    """A watchdog for this process (Linux only: elsewhere only SIGINT/SIGTERM clean up). It has
    recorded this process's current children when this returns."""
    if not os.path.isdir("/proc"):
        return None
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    proc.stdout.readline()
    proc.stdout.close()
    return proc


if __name__ == "__main__":
    watch(int(sys.argv[1]))
