"""Run programs in the sandbox: a wall-clock kill of the whole process group, capped output reads.

``Sandbox.run`` runs one program; ``Sandbox.run_group`` runs several at once, each in its own
sandbox, under one wall clock, connected only by descriptors the caller passes (the ``code`` labeler
runs a solution and the judge of its tests this way). Neither raises for anything a program does;
every end is a ``Result`` status:
- ``ok`` / ``error``: the program exited, 0 or not;
- ``signal``: it was killed by a signal (a CPU limit's SIGXCPU, a SIGSEGV, ...);
- ``timeout``: the wall clock ran out and the sandbox was killed;
- ``output_limit``: stdout or stderr went past ``max_output_bytes`` and the sandbox was killed;
- ``stopped``: (``run_group``) it was still running when the group's primary program ended, or when
  another program of the group hit its output limit, and was killed;
- ``sandbox_error``: the sandbox did not start (or not within ``startup_s``) or the launcher failed;
  the program never ran.
How a program ended is read from the sandbox's init (see ``bwrap.LAUNCHER``), never from anything
the program prints or its exit code alone, so no program can make its own run a sandbox error. The
wall clock is the programs': it starts once every sandbox of the group reports its program started.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from prmflow.sandbox.bwrap import (
    PROG_DIR,
    SandboxUnavailable,
    UidPool,
    build_argv,
    check_environment,
    find_bwrap,
    find_python,
    launcher_argv,
    write_program_dir,
)
from prmflow.sandbox.limits import Limits
from prmflow.sandbox.seccomp import filter_fd, filter_program

RunStatus = Literal["ok", "error", "signal", "timeout", "output_limit", "stopped", "sandbox_error"]

# bwrap and the launcher pass on only these; the runner's own environment never reaches the sandbox.
_HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Result:
    status: RunStatus
    returncode: int | None
    """The program's exit code (negative: killed by that signal, as ``subprocess`` says); None when it
    did not end by itself."""
    stdout: bytes
    stderr: bytes
    duration_s: float
    detail: str | None = None
    """What happened, for a human, when status is not ok."""
    signal: str | None = None
    """SIGXCPU, SIGKILL, ... when status is signal."""


@dataclass(frozen=True)
class Program:
    """One program of a group: ``argv[0]`` is one of ``files`` (read-only in /prog)."""

    files: dict[str, str | bytes]
    argv: list[str]
    stdin: bytes = b""
    fds: tuple[int, ...] = ()
    """Host descriptors the program inherits, at the same numbers (pipes to another program). They are
    given away: ``run_group`` closes them here once the program started (or failed to), so that the
    program's end is the end of every copy but its own, and its peer reads end-of-file."""
    limits: Limits | None = None
    """This program's limits; None: the sandbox's."""


class Sandbox:
    """Runs programs under bubblewrap with ``limits``. ``mode="none"`` runs them unsandboxed (only
    rlimits and the wall clock), which the caller must have been allowed explicitly.

    Construction checks that a sandbox can start and raises SandboxUnavailable (naming what is
    missing) when it cannot, so a misconfigured worker fails closed before judging anything.
    """

    def __init__(self, limits: Limits | None = None, *, mode: str = "bwrap", tmp_parent: str | None = None,
                 startup_s: float = 60.0) -> None:
        if mode not in ("bwrap", "none"):
            raise ValueError(f"sandbox mode must be 'bwrap' or 'none', got {mode!r}")
        self.limits = limits or Limits()
        self.startup_s = startup_s
        """How long bwrap may take to set the sandbox up before the program's own clock starts."""
        self.mode = mode
        self.tmp_parent = tmp_parent
        self.python = find_python()
        self.root_mode = os.geteuid() == 0
        self._uids = UidPool()
        self.bwrap = ""
        # None where the architecture has no syscall table (the namespaces and uid still hold).
        self._seccomp = filter_program() if mode == "bwrap" else None
        if mode == "bwrap":
            self.bwrap = find_bwrap()
            check_environment(self.bwrap, self.python)
            probe = self.run({"probe.py": "print('ok')\n"}, ["probe.py"])
            if probe.status != "ok" or probe.stdout.strip() != b"ok":
                raise SandboxUnavailable(
                    f"bwrap at {self.bwrap} could not start a sandbox ({probe.status}: {probe.detail}; "
                    f"stderr: {probe.stderr.decode(errors='replace')[-300:].strip()!r}); "
                    "unprivileged user namespaces may be disabled (sysctl user.max_user_namespaces, "
                    "kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns)"
                )

    def run(self, files: dict[str, str | bytes], argv: list[str], stdin: bytes = b"") -> Result:
        """Run the Python program ``argv[0]`` (one of ``files``, which appear read-only in /prog) with
        arguments ``argv[1:]``, isolated (-I) and with the standard library only (-S); ``stdin`` is
        written to its standard input. Raises ValueError only for a file name that is not plain."""
        return self.run_group([Program(files, argv, stdin)])[0]

    def prog_path(self, name: str) -> str:
        """Where a program's file ``name`` is, as the program sees it (the sandbox's /prog)."""
        return f"{PROG_DIR}/{name}" if self.mode == "bwrap" else name

    def run_group(self, programs: Sequence[Program], primary: int = 0, staged: bool = False) -> list[Result]:
        """Run ``programs``, each in a sandbox of its own (its own namespaces and, as root, its own
        uid), under one wall clock. When ``programs[primary]`` ends, the others are stopped.
        ``staged``: each program's sandbox starts only once the one before it runs, so nothing a later
        program does can delay or disturb an earlier one's start. Results in the order given."""
        t0 = time.monotonic()
        uids: list[int] = []
        dirs: list[str] = []
        running: list[_Running] = []
        try:
            try:
                for prog in programs:
                    uid = self._uids.acquire() if (self.mode == "bwrap" and self.root_mode) else -1
                    uids.append(uid)
                    dirs.append(write_program_dir(self.tmp_parent, prog.files, uid))
                for i in range(1 if staged else len(programs)):
                    running.append(self._spawn(programs[i], dirs[i], uids[i]))
            except OSError as e:
                for prog in programs[len(running):]:
                    _close_all(prog.fds)
                for r in running:
                    r.kill()
                    r.close()
                err = Result("sandbox_error", None, b"", b"", time.monotonic() - t0, f"could not start: {e}")
                return [err for _ in programs]
            later = [lambda i=i: self._spawn(programs[i], dirs[i], uids[i]) for i in range(len(running), len(programs))]
            try:
                results = _supervise(running, later, primary, self.startup_s, t0)
            finally:
                for prog in programs[len(running):]:  # never started: their descriptors are still ours
                    _close_all(prog.fds)
            never = Result("sandbox_error", None, b"", b"", time.monotonic() - t0,
                           "not started: the program before it in the group did not start")
            return results + [never] * (len(programs) - len(results))
        finally:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
            for uid in uids:
                if uid >= 0:
                    self._uids.release(uid)

    def _spawn(self, prog: Program, prog_dir: str, uid: int) -> _Running:
        limits = prog.limits or self.limits
        status_r, status_w = os.pipe()
        seccomp_fd = None
        try:
            if self.mode == "bwrap":
                seccomp_fd = filter_fd(self._seccomp) if self._seccomp is not None else None
                program = [f"{PROG_DIR}/{prog.argv[0]}", *prog.argv[1:]]
                cmd = build_argv(self.bwrap, self.python, limits, prog_dir, program, root_mode=self.root_mode,
                                 uid=uid, status_fd=status_w, seccomp_fd=seccomp_fd)
                cwd = None
            else:
                program = [os.path.join(prog_dir, prog.argv[0]), *prog.argv[1:]]
                cmd = launcher_argv(self.python, limits, program, uid=-1, status_fd=status_w, init_shares_uid=True)
                cwd = prog_dir
            passed = (status_w, *(() if seccomp_fd is None else (seccomp_fd,)), *prog.fds)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(_HOST_ENV),
                start_new_session=True, pass_fds=passed, cwd=cwd,
            )
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
            if seccomp_fd is not None:
                os.close(seccomp_fd)
            _close_all(prog.fds)
        return _Running(proc, status_r, limits, prog.stdin)


@dataclass
class _Running:
    proc: subprocess.Popen
    status_r: int
    limits: Limits
    stdin: bytes
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    status: bytearray = field(default_factory=bytearray)
    open_fds: int = 3
    """stdout, stderr and the status pipe until each reads end-of-file."""
    outcome: str | None = None
    """None while running; timeout | output_limit | stopped | start_timeout when we ended it."""

    @property
    def started(self) -> bool:
        return self.status.startswith(b"S\n")

    @property
    def ended(self) -> bool:
        return self.open_fds == 0

    def kill(self) -> None:
        # The group holds bwrap; its death takes the pid namespace (--die-with-parent), and with it
        # every process the program made, setsid or not. Unsandboxed, the group is all there is.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        try:
            os.close(self.status_r)
        except OSError:
            pass
        self.proc.wait()

    def drain(self) -> None:
        """Read what is left in the pipes (written before the end) without waiting."""
        for f, buf, cap in ((self.proc.stdout, self.out, self.limits.max_output_bytes),
                            (self.proc.stderr, self.err, self.limits.max_output_bytes), (self.status_r, self.status, 65536)):
            fd = f if isinstance(f, int) else f.fileno()
            try:
                while len(buf) < cap:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buf += chunk[: cap - len(buf)]
            except (BlockingIOError, OSError, ValueError):
                pass

    def result(self, duration: float, startup_s: float, timeout_s: float) -> Result:
        out, err = bytes(self.out), bytes(self.err)
        records = self.status.decode("utf-8", "replace").splitlines()
        error = next((line[2:] for line in records if line.startswith("E ")), None)
        code = next((int(line[2:]) for line in records if line.startswith("X ") and _is_int(line[2:])), None)
        if error is None and not self.started and self.outcome == "stopped":
            # another program of the group ended the run (its output limit) while this one started
            return Result("stopped", None, out, err, duration, "stopped before its program started")
        if error is not None or not self.started:
            if self.outcome == "start_timeout":
                why = f"the sandbox did not start within {startup_s:g} s"
            elif error is not None:
                why = f"the launcher failed: {error.strip()[:500]}"
            else:
                why = "bwrap failed to start the sandbox: " + err.decode(errors="replace")[-500:].strip()
            return Result("sandbox_error", None, out, err, duration, why)
        if code is not None:
            if code < 0:
                name = _signal_name(-code)
                return Result("signal", code, out, err, duration, f"killed by {name}", name)
            return Result("ok" if code == 0 else "error", code, out, err, duration, None if code == 0 else f"exit code {code}")
        if self.outcome == "timeout":
            return Result("timeout", None, out, err, duration, f"killed after the {timeout_s:g} s wall-clock limit")
        if self.outcome == "output_limit":
            return Result("output_limit", None, out, err, duration,
                          f"killed: output past the {self.limits.max_output_bytes} byte limit")
        if self.outcome == "stopped":
            return Result("stopped", None, out, err, duration, "stopped: the group's primary program ended first")
        return Result("error", None, out, err, duration, "the sandbox ended without reporting how its program ended")


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _supervise(running: list[_Running], later: list, primary: int, startup_s: float, t0: float) -> list[Result]:
    """Feed stdins, read outputs (capped) and the inits' status records until the primary program's
    sandbox is gone or a limit is hit; then kill what is left and reap it. ``later``: spawners of the
    programs to start, in order, each once the last one started runs."""
    sel = selectors.DefaultSelector()
    pending: dict[int, memoryview] = {}

    def watch(i: int, r: _Running) -> None:
        for f in (r.proc.stdout, r.proc.stderr):
            os.set_blocking(f.fileno(), False)
            sel.register(f.fileno(), selectors.EVENT_READ, (i, "out" if f is r.proc.stdout else "err"))
        os.set_blocking(r.status_r, False)
        sel.register(r.status_r, selectors.EVENT_READ, (i, "status"))
        if r.stdin:
            os.set_blocking(r.proc.stdin.fileno(), False)
            sel.register(r.proc.stdin.fileno(), selectors.EVENT_WRITE, (i, "stdin"))
            pending[i] = memoryview(r.stdin)
        else:
            r.proc.stdin.close()

    for i, r in enumerate(running):
        watch(i, r)
    timeout_s = max(r.limits.timeout_s for r in running)
    deadline = time.monotonic() + startup_s
    clock_started = False
    try:
        while primary >= len(running) or not running[primary].ended:
            if later and running[-1].ended and not running[-1].started:
                break  # it failed to start: the rest never will
            if later and running[-1].started:
                try:
                    running.append(later.pop(0)())
                except OSError:  # the rest is reported as not started
                    later.clear()
                    break
                watch(len(running) - 1, running[-1])
                timeout_s = max(r.limits.timeout_s for r in running)
                continue
            if not clock_started and not later and all(r.started or r.ended for r in running):
                clock_started = True
                deadline = time.monotonic() + timeout_s
            left = deadline - time.monotonic()
            if left <= 0:
                for r in running:
                    if not r.ended:
                        r.outcome = "timeout" if clock_started else "start_timeout"
                break
            stop = False
            for key, _ in sel.select(min(left, 1.0)):
                i, what = key.data
                r = running[i]
                if what == "stdin":
                    try:
                        n = os.write(key.fd, pending[i][:65536])
                        pending[i] = pending[i][n:]
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        pending[i] = pending[i][:0]
                    if not pending[i]:
                        sel.unregister(key.fd)
                        r.proc.stdin.close()
                    continue
                try:
                    chunk = os.read(key.fd, 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    r.open_fds -= 1
                    continue
                if what == "status":
                    r.status += chunk[: 65536 - len(r.status)]
                    continue
                buf = r.out if what == "out" else r.err
                room = r.limits.max_output_bytes - len(buf)
                buf += chunk[: max(room, 0)]
                if len(chunk) > room:
                    r.outcome = "output_limit"
                    stop = True
                    break
            if stop:
                for r in running:
                    if not r.ended and r.outcome is None:
                        r.outcome = "stopped"
                break
        for r in running:
            if not r.ended and r.outcome is None:
                r.outcome = "stopped"
    finally:
        sel.close()
        for r in running:
            r.kill()
        for r in running:
            r.drain()
            r.close()
    duration = time.monotonic() - t0
    return [r.result(duration, startup_s, timeout_s) for r in running]
