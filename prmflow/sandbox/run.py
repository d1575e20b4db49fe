"""Run one program in the sandbox: a wall-clock kill of the whole process group, capped output reads.

``Sandbox.run`` never raises for anything the program does; every end is a ``Result`` status:
- ``ok`` / ``error``: the program exited, 0 or not;
- ``signal``: it was killed by a signal (a CPU limit's SIGXCPU, a SIGSEGV, ...);
- ``timeout``: the wall clock ran out and the sandbox was killed;
- ``output_limit``: stdout or stderr went past ``max_output_bytes`` and the sandbox was killed;
- ``sandbox_error``: the sandbox did not start (or not within ``startup_s``) or the launcher failed;
  the program never ran.
The wall clock is the program's: it starts once bwrap reports the program started.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Literal

from prmflow.sandbox.bwrap import (
    LAUNCHER_EXIT,
    LAUNCHER_MARK,
    PROG_DIR,
    SandboxUnavailable,
    UidPool,
    build_argv,
    check_environment,
    find_bwrap,
    find_python,
    write_program_dir,
)
from prmflow.sandbox.limits import Limits
from prmflow.sandbox.seccomp import filter_fd, filter_program

RunStatus = Literal["ok", "error", "signal", "timeout", "output_limit", "sandbox_error"]

# bwrap and the launcher pass on only these; the runner's own environment never reaches the sandbox.
_HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Result:
    status: RunStatus
    returncode: int | None
    """The program's exit code (128 + n for signal n, as bwrap reports it); None when killed by us."""
    stdout: bytes
    stderr: bytes
    duration_s: float
    detail: str | None = None
    """What happened, for a human, when status is not ok."""
    signal: str | None = None
    """SIGXCPU, SIGKILL, ... when status is signal."""


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
        uid = self._uids.acquire() if (self.mode == "bwrap" and self.root_mode) else -1
        prog_dir = None
        started = time.monotonic()
        try:
            prog_dir = write_program_dir(self.tmp_parent, files, uid)
            if self.mode == "bwrap":
                program = [f"{PROG_DIR}/{argv[0]}", *argv[1:]]
                status_r, status_w = os.pipe()
                seccomp_fd = filter_fd(self._seccomp) if self._seccomp is not None else None
                cmd = build_argv(self.bwrap, self.python, self.limits, prog_dir, program, root_mode=self.root_mode,
                                 uid=uid, status_fd=status_w, seccomp_fd=seccomp_fd)
                return self._execute(cmd, stdin, started, status_r, [status_w, seccomp_fd], cwd=None)
            program = [os.path.join(prog_dir, argv[0]), *argv[1:]]
            cmd = _unsandboxed(self.python, self.limits, program)
            return self._execute(cmd, stdin, started, None, [], cwd=prog_dir)
        except OSError as e:
            return Result("sandbox_error", None, b"", b"", time.monotonic() - started, f"could not start: {e}")
        finally:
            if prog_dir is not None:
                shutil.rmtree(prog_dir, ignore_errors=True)
            if uid >= 0:
                self._uids.release(uid)

    def _execute(self, cmd: list[str], stdin: bytes, started: float, status_r: int | None,
                 child_fds: list[int | None], cwd: str | None) -> Result:
        limits = self.limits
        child_fds = [fd for fd in child_fds if fd is not None]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(_HOST_ENV),
                start_new_session=True, pass_fds=tuple(child_fds), cwd=cwd,
            )
        except OSError:
            if status_r is not None:
                os.close(status_r)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        outcome = "failed"
        try:
            outcome, out, err, status_json = _communicate(proc, stdin, limits, status_r, self.startup_s)
        finally:
            if outcome != "exited":
                # The group holds bwrap; its death takes the pid namespace (--die-with-parent), and with
                # it every process the program made, setsid or not.
                _kill_group(proc)
            proc.wait()
            if status_r is not None:
                os.close(status_r)
        duration = time.monotonic() - started
        if outcome == "start_timeout":
            return Result("sandbox_error", None, out, err, duration,
                          f"the sandbox did not start within {self.startup_s:g} s")
        if outcome == "timeout":
            return Result("timeout", None, out, err, duration, f"killed after the {limits.timeout_s:g} s wall-clock limit")
        if outcome == "output_limit":
            return Result("output_limit", None, out, err, duration,
                          f"killed: output past the {limits.max_output_bytes} byte limit")
        rc = proc.returncode
        if status_r is not None and b"child-pid" not in status_json:
            return Result("sandbox_error", rc, out, err, duration,
                          "bwrap failed to start the sandbox: " + err.decode(errors="replace")[-500:].strip())
        if rc == LAUNCHER_EXIT and err.startswith(LAUNCHER_MARK):
            return Result("sandbox_error", rc, out, err, duration, err.decode(errors="replace").strip()[:500])
        signame = _signal_name(rc, status_r is not None)
        if signame is not None:
            return Result("signal", rc, out, err, duration, f"killed by {signame}", signame)
        return Result("ok" if rc == 0 else "error", rc, out, err, duration, None if rc == 0 else f"exit code {rc}")


def _unsandboxed(python: str, limits: Limits, program: list[str]) -> list[str]:
    from prmflow.sandbox.bwrap import LAUNCHER

    return [
        python, "-I", "-S", "-c", LAUNCHER, str(limits.cpu_seconds), str(limits.memory_mb << 20),
        str(limits.file_size_mb << 20), str(limits.max_processes), str(limits.max_open_files), "-1", "--", *program,
    ]


def _signal_name(rc: int | None, via_bwrap: bool) -> str | None:
    if rc is None:
        return None
    n = rc - 128 if via_bwrap and rc > 128 else -rc if rc < 0 else None
    if n is None:
        return None
    try:
        return signal.Signals(n).name
    except ValueError:
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _communicate(proc: subprocess.Popen, stdin: bytes, limits: Limits, status_r: int | None,
                 startup_s: float) -> tuple[str, bytes, bytes, bytes]:
    """Feed stdin, read stdout/stderr up to ``max_output_bytes`` each, until they close or a limit is hit.

    The wall clock starts when bwrap reports the program's pid on ``status_r``: creating namespaces can
    stall under load (network namespaces most), and that is not the program's time. Until then the
    limit is ``startup_s``. Returns (exited | timeout | start_timeout | output_limit, stdout, stderr,
    bwrap's status lines)."""
    cap = limits.max_output_bytes
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    status = bytearray()
    sel = selectors.DefaultSelector()
    for f in bufs:
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    running = status_r is None
    deadline = time.monotonic() + (limits.timeout_s if running else startup_s)
    if status_r is not None:
        os.set_blocking(status_r, False)
        sel.register(status_r, selectors.EVENT_READ)
    pending = memoryview(stdin)
    if pending:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    outcome = "exited"
    try:
        while any(f in bufs for f in (key.fileobj for key in sel.get_map().values())):
            left = deadline - time.monotonic()
            if left <= 0:
                outcome = "timeout" if running else "start_timeout"
                break
            for key, _ in sel.select(min(left, 1.0)):
                f = key.fileobj
                if f is proc.stdin:
                    try:
                        n = os.write(f.fileno(), pending[:65536])
                        pending = pending[n:]
                    except (BrokenPipeError, BlockingIOError, OSError):
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(f)
                        f.close()
                    continue
                try:
                    chunk = os.read(f if f is status_r else f.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(f)
                    continue
                if f is status_r:
                    status += chunk[:65536]
                    if not running and b"child-pid" in status:
                        running = True
                        deadline = time.monotonic() + limits.timeout_s
                    continue
                buf = bufs[f]
                room = cap - len(buf)
                buf += chunk[: max(room, 0)]
                if len(chunk) > room:
                    outcome = "output_limit"
                    break
            if outcome != "exited":
                break
        if outcome == "exited":
            # Output closed: the sandbox is gone or going; wait for bwrap within the deadline.
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                outcome = "timeout" if running else "start_timeout"
        if status_r is not None:
            try:
                status += os.read(status_r, 65536)  # the lines bwrap wrote as it exited
            except (BlockingIOError, OSError):
                pass
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    return outcome, bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), bytes(status)
