"""The escape corpus: programs that try to get out of the sandbox, each contained with a specific status.

After every program: nothing outside the sandbox's temp dir changed (a planted directory with a
secret, and marker paths in the project, home and the host's /tmp), and no process is left (none in
the sandbox's pid namespace, none carrying the run's token). Network tests only ever talk to a
listener this test opens on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from prmflow.sandbox import Limits, Sandbox
from prmflow.sandbox.seccomp import denied_numbers

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=10, memory_mb=256, max_processes=16, file_size_mb=4, tmp_size_mb=16,
                max_output_bytes=64 << 10)

# Every program starts by naming its pid namespace, so the test can look for leftovers in it.
PROLOGUE = "import os, sys\nprint('PIDNS', os.readlink('/proc/self/ns/pid'), flush=True)\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """The outside: a planted secret, marker paths an escape would create, a secret env var."""
    token = uuid.uuid4().hex
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"SECRET-{token}")
    monkeypatch.setenv("PRMFLOW_TEST_SECRET", f"ENVSECRET-{token}")
    markers = [PROJECT / f".escape-{token}", Path.home() / f".escape-{token}", Path("/tmp") / f"escape-{token}",
               outside / f"escape-{token}"]
    return {"token": token, "outside": outside, "markers": markers, "secret": f"SECRET-{token}",
            "env_secret": f"ENVSECRET-{token}"}


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _pids_in(ns: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == ns:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _pids_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _settled(check, seconds: float = 5.0):
    """``check()`` once it is empty, or its last value: a killed namespace is reaped asynchronously."""
    end = time.monotonic() + seconds
    while True:
        value = check()
        if not value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def run_contained(sandbox: Sandbox, world: dict, program: str, args: list[str] | None = None, box=None):
    before = _tree(world["outside"])
    argv = ["prog.py", world["token"], *(args or [])]
    result = (box or sandbox).run({"prog.py": PROLOGUE + textwrap.dedent(program)}, argv)
    out = result.stdout.decode(errors="replace")
    m = re.search(r"PIDNS (pid:\[\d+\])", out)
    assert m, f"the program did not start: {result}"
    assert _settled(lambda: _pids_in(m.group(1))) == [], "a process was left in the sandbox's pid namespace"
    assert _settled(lambda: _pids_with(world["token"])) == [], "a process carrying the run's token was left"
    assert _tree(world["outside"]) == before, "the planted directory changed"
    for marker in world["markers"]:
        assert not marker.exists(), f"{marker} was created from inside the sandbox"
    assert world["secret"] not in out + result.stderr.decode(errors="replace")
    assert world["env_secret"] not in out + result.stderr.decode(errors="replace")
    return result, out, result.stderr.decode(errors="replace")


# (name, program, extra argv kinds, expected status, pattern in stdout+stderr)
# Programs get sys.argv[1] = the run's token; argv kinds add: port (the listener's), secret (the planted
# file's path), markers (the paths an escape would create), project (this checkout), pid (this test's).
CORPUS = [
    ("connect to a listener on 127.0.0.1", """
        import socket
        socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2)
        print("ESCAPED: connected")
     """, ["port"], "error", r"Network is unreachable|Connection refused"),
    ("read a planted secret file", """
        print(open(sys.argv[2]).read())
     """, ["secret"], "error", r"FileNotFoundError"),
    ("read the secret through /proc/1/root", """
        print(open("/proc/1/root" + sys.argv[2]).read())
     """, ["secret"], "error", r"FileNotFoundError|PermissionError"),
    ("write outside the temp dir", """
        for path in sys.argv[2:]:
            try:
                open(path, "w").write("x")
                print("ESCAPED: wrote", path)
            except OSError as e:
                print("blocked", type(e).__name__)
        open("/usr/escape", "w").write("x")
     """, ["markers"], "error", r"blocked (PermissionError|FileNotFoundError)[\s\S]*(Read-only file system|Permission)"),
    ("list the project directory", """
        print(os.listdir(sys.argv[2]))
     """, ["project"], "error", r"FileNotFoundError"),
    ("a memory bomb", """
        hog = []
        while True:
            hog.append(bytearray(16 << 20))
     """, [], "error", r"MemoryError"),
    ("an infinite loop", """
        while True:
            pass
     """, [], "timeout", r"PIDNS"),
    ("a 10 GB file write", """
        chunk = b"x" * (1 << 20)
        with open("/tmp/big", "wb") as f:
            for _ in range(10 << 10):
                f.write(chunk)
     """, [], "error", r"File too large"),
    ("fill the temp dir with many files", """
        chunk = b"x" * (1 << 20)
        for i in range(1000):
            with open(f"/tmp/f{i}", "wb") as f:
                for _ in range(3):
                    f.write(chunk)
     """, [], "error", r"No space left on device"),
    ("kill the parent process", """
        import signal
        for who, pid in (("parent", os.getppid()), ("host", int(sys.argv[2]))):
            try:
                os.kill(pid, signal.SIGKILL)
                print(who, "signalled")
            except OSError as e:
                print(who, type(e).__name__)
     """, ["pid"], "ok", r"host ProcessLookupError"),
    ("a child that outlives the timeout", """
        import time
        if os.fork() == 0:
            time.sleep(120)
        time.sleep(120)
     """, [], "timeout", r"PIDNS"),
    ("a daemon child left behind by a parent that exits", """
        import time
        if os.fork() == 0:
            if os.fork() == 0:
                time.sleep(120)
            os._exit(0)
        print("parent done")
     """, [], "ok", r"parent done"),
    ("sleep past the limit", """
        import time
        time.sleep(120)
     """, [], "timeout", r"PIDNS"),
    ("read the parent's environment variables", """
        print(dict(os.environ))
        for path in ("/proc/1/environ", "/proc/self/environ", "/proc/%d/environ" % os.getppid()):
            try:
                print(path, open(path, "rb").read())
            except OSError as e:
                print(path, type(e).__name__)
     """, [], "ok", r"'HOME': '/tmp'"),
    # setuid(0): EPERM as a dropped uid (root mode), EINVAL where uid 0 is not mapped (user namespace)
    ("ctypes syscalls", """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        calls = {
            "setuid0": lambda: libc.setuid(0),
            "mount": lambda: libc.mount(b"none", b"/usr", b"tmpfs", 0, None),
            "chroot": lambda: libc.chroot(b"/tmp"),
            "ptrace_attach_1": lambda: libc.ptrace(16, 1, None, None),
            "unshare_mount_ns": lambda: libc.unshare(0x00020000),
            "sethostname": lambda: libc.sethostname(b"x", 1),
            "setns": lambda: libc.setns(os.open("/proc/1/ns/mnt", os.O_RDONLY), 0),
        }
        for name, call in calls.items():
            try:
                rc = call()
            except OSError as e:
                rc = -1
                print(name, "OSError", e.errno)
            print(name, rc, ctypes.get_errno())
            if rc == 0:
                print("ESCAPED:", name)
     """, [], "ok", r"setuid0 -1 (1|22)\b[\s\S]*mount -1[\s\S]*ptrace_attach_1 -1"),
    # Calls that succeed or fail differently without the seccomp filter: unshare(0) is a no-op that
    # returns 0, io_uring_setup and perf_event_open with a null pointer give EFAULT; denied, all give EPERM.
    ("syscalls the seccomp filter denies", """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        nr = dict(pair.split("=") for pair in sys.argv[2:])
        for name, args in (("unshare", (0,)), ("io_uring_setup", (1, None)), ("perf_event_open", (None, 0, -1, -1, 0)),
                           ("keyctl", (0, -2, 1)), ("ptrace", (0, 0, None, None))):
            rc = libc.syscall(int(nr[name]), *args)
            print(name, rc, ctypes.get_errno())
     """, ["seccomp"], "ok", r"unshare -1 1\nio_uring_setup -1 1\nperf_event_open -1 1\nkeyctl -1 1\nptrace -1 1\n"),
    ("os.setsid to leave the process group", """
        import time
        if os.fork() == 0:
            os.setsid()
            time.sleep(120)
        print("detached child started")
     """, [], "ok", r"detached child started"),
    ("a stdout flood", """
        while True:
            sys.stdout.write("x" * 65536)
     """, [], "output_limit", r"PIDNS"),
    ("a stderr flood", """
        while True:
            sys.stderr.write("x" * 65536)
     """, [], "output_limit", r"PIDNS"),
]


@pytest.mark.parametrize("name,program,arg_kinds,status,pattern", CORPUS, ids=[row[0] for row in CORPUS])
def test_escape_is_contained(sandbox, world, name, program, arg_kinds, status, pattern):
    listener = None
    args: list[str] = []
    for kind in arg_kinds:
        if kind == "port":
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            args.append(str(listener.getsockname()[1]))
        elif kind == "secret":
            args.append(str(world["outside"] / "secret.txt"))
        elif kind == "markers":
            # /tmp inside is the sandbox's own tmpfs, writable by design; the host's is checked after.
            args += [str(m) for m in world["markers"] if m.parent != Path("/tmp")]
        elif kind == "project":
            args.append(str(PROJECT))
        elif kind == "pid":
            args.append(str(os.getpid()))
        elif kind == "seccomp":
            args += [f"{name}={nr}" for name, nr in denied_numbers().items()]
    try:
        result, out, err = run_contained(sandbox, world, program, args)
        if listener is not None:
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody connected
    finally:
        if listener is not None:
            listener.close()
    assert result.status == status, (result.status, result.detail, out[-300:], err[-500:])
    assert re.search(pattern, out + err), (pattern, out[-500:], err[-500:])
    assert "ESCAPED" not in out
    if status == "output_limit":
        assert len(result.stdout) <= LIMITS.max_output_bytes and len(result.stderr) <= LIMITS.max_output_bytes


def test_cpu_limit_kills_a_busy_loop_before_the_wall_clock(world):
    box = Sandbox(Limits(timeout_s=30, cpu_s=1))
    result, _, _ = run_contained(box, world, "while True:\n    pass\n", box=box)
    assert (result.status, result.signal) == ("signal", "SIGXCPU")


FORK_PROBE = """
    import time
    spawned = 0
    for _ in range(int(sys.argv[2])):
        try:
            pid = os.fork()
        except OSError as e:
            print("refused", type(e).__name__, flush=True)
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        spawned += 1
    print("spawned", spawned, flush=True)
"""


def test_fork_bomb_is_contained_once_the_process_limit_is_proven(sandbox, world):
    # First a bounded count: at most 3x the limit, so a broken limit cannot take the machine down.
    result, out, _ = run_contained(sandbox, world, FORK_PROBE, [str(3 * LIMITS.max_processes)])
    spawned = int(re.search(r"spawned (\d+)", out).group(1))
    assert "refused BlockingIOError" in out and spawned < LIMITS.max_processes, out
    # The limit holds; now the real thing.
    bomb = """
        while True:
            os.fork()
    """
    result, out, err = run_contained(sandbox, world, bomb)
    assert result.status == "error" and "BlockingIOError" in err, (result, err[-500:])
