"""The verdict escape corpus: wrong solutions that try to cheat the ``code`` labeler or break its walls.

Each entry is a wrong solution to a small real problem, with one attack in it. Where an attack would
work, the solution uses it to pass (it answers right, or reports a pass), so a hole shows as a value
of 1.0; where it is refused, the solution fails, and the entry names the status and the detail that
say how. After each run, nothing may be left: no process carrying the run's name (every process the
solution makes inherits it), no change in a planted directory, no marker file outside, no secret in
the outcome.

Run as a script (``python tests/sandbox/verdict_corpus.py WORLD_JSON``) it judges every entry with the
same labeler and checks, as whatever user runs it, and prints one JSON line per entry: the
unprivileged leg of ``test_verdict_escapes.py`` runs it under ``setpriv``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ADD = "assert add(1, 2) == 3\nassert add(-4, 4) == 0\nassert add(10, 5) == 15\n"
PRIME = json.dumps({
    "prelude": 'def is_prime(n):\n    """True when n is a prime number."""\n',
    "test": "def check(candidate):\n    assert candidate(2) is True\n    assert candidate(9) is False\n"
            "    assert candidate(97) is True\n    assert candidate(1) is False\n\ncheck(is_prime)\n",
    "entry_point": "is_prime",
})
MEAN = ("import math\nassert math.isclose(mean([1, 2]), 1.5)\nassert abs(mean([1, 2, 3, 4]) - 2.5) < 1e-9\n"
        "assert type(mean([2])) is float\n")
ZERO = json.dumps({  # HumanEval/32's shape: the tests call a helper of the prompt's
    "prelude": "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n\n"
               'def find_zero(xs):\n    """A zero of the polynomial with coefficients xs."""\n',
    "test": "def check(candidate):\n    for xs in ([-6, 11, -6, 1], [1, 1], [-2, 0, 1]):\n"
            "        assert abs(poly(xs, candidate(xs))) < 1e-6\n\ncheck(find_zero)\n",
    "entry_point": "find_zero",
})
REVERSE = "assert rev([1, 2, 3]) == [3, 2, 1]\nassert rev([]) == []\nassert rev(['a', 'b']) == ['b', 'a']\n"

# Syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h).
NR = {
    "x86_64": dict(clone=56, clone3=435, unshare=272, setns=308, mount=165, ptrace=101, process_vm_readv=310,
                   process_vm_writev=311, bpf=321, perf_event_open=298, keyctl=250, userfaultfd=323,
                   io_uring_setup=425, shmget=29, memfd_create=319),
    "aarch64": dict(clone=220, clone3=435, unshare=97, setns=268, mount=40, ptrace=117, process_vm_readv=270,
                    process_vm_writev=271, bpf=280, perf_event_open=241, keyctl=219, userfaultfd=282,
                    io_uring_setup=425, shmget=194, memfd_create=279),
}

# Names every process of the run (PR_SET_NAME; fork keeps it), so leftovers can be found on the host.
PROLOGUE = """\
import ctypes as _ct
_ct.CDLL(None).prctl(15, b"{COMM}", 0, 0, 0)
"""

# A syscall helper: raises OSError(errno) when refused, returns the result otherwise.
SYSCALL = """\
import ctypes, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
NR = {NR}
def sys_call(name, *args):
    rc = _libc.syscall(NR[name], *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, name + " refused: " + os.strerror(e))
    return rc
"""

RIGHT_ADD = "        return a + b\n"


def _wall(attack: str, errno_name: str = "EPERM") -> str:
    """A wrong ``add`` that makes ``attack`` (a statement list using ``sys_call``) and answers right
    only if it went through."""
    body = "\n".join("        " + line for line in attack.strip().splitlines())
    return SYSCALL + f"""
def add(a, b):
    try:
{body}
    except OSError:
        raise
    else:
        return a + b  # the attack went through: cheat
"""


# (id, tests, solution, status, detail regex)
CORPUS: list[tuple[str, str, str, str, str]] = [
    # --- reaching the verdict from inside ---
    ("walk the stack to a report function", ADD, """
import sys
def add(a, b):
    f, hits = sys._getframe(), []
    while f is not None:
        for k, v in {**f.f_globals, **f.f_locals}.items():
            if callable(v) and k in ("emit", "report", "_report", "verdict"):
                v(event="done", passed=3, total=3)
                hits.append(k)
        f = f.f_back
    return a - b if not hits else a + b
""", "ok", r"0/1 tests passed; first failure: AssertionError"),
    ("gc walk to the harness's objects", ADD, """
import gc
def add(a, b):
    for o in gc.get_objects():
        if callable(o) and getattr(o, "__name__", "") in ("emit", "report", "plan_units", "verdict"):
            o(event="done", passed=3, total=3)
            return a + b
        if isinstance(o, dict) and "passed" in o and "total" in o:
            o["passed"] = o["total"]
            return a + b
    raise LookupError("no harness object in this process")
""", "ok", r"LookupError: no harness object in this process"),
    ("replace exec and compile", ADD, """
import builtins
builtins.exec = lambda *a, **k: None
builtins.compile = lambda *a, **k: compile("pass", "x", "exec")
def add(a, b):
    return a * b
""", "ok", r"AssertionError"),
    ("a compile that strips asserts", ADD, """
import ast, builtins
_compile = builtins.compile
class _Strip(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
def compile(source, filename, mode, *a, **k):
    tree = source if isinstance(source, ast.AST) else ast.parse(source, filename, mode)
    return _compile(ast.fix_missing_locations(_Strip().visit(tree)), filename, mode, *a, **k)
builtins.compile = compile
def add(a, b):
    return 0
""", "ok", r"AssertionError"),
    ("patch abs", MEAN, """
import builtins
builtins.abs = lambda x: 0
def mean(xs):
    return float(sum(xs))
""", "ok", r"AssertionError"),
    ("patch math.isclose", MEAN, """
import math
math.isclose = lambda *a, **k: True
def mean(xs):
    return float(len(xs))
""", "ok", r"AssertionError"),
    ("patch type", MEAN, """
import builtins
builtins.type = lambda *a: float
def mean(xs):
    return sum(xs) // len(xs)
""", "ok", r"AssertionError"),
    ("shadow builtins by name", MEAN, """
def abs(x):
    return 0
def type(x):
    return float
class math:
    isclose = staticmethod(lambda *a, **k: True)
def mean(xs):
    return 0.0
""", "ok", r"AssertionError"),
    ("redefine the prompt's helper", ZERO, """
def poly(xs, x):
    return 0
def find_zero(xs):
    return 12345.0
""", "ok", r"AssertionError"),
    ("import the harness and switch its guard off", ADD, """
import sys, importlib
def add(a, b):
    found = []
    for name in ("code_judge", "judge", "code_harness", "harness", "prmflow.labelers.outcome.code_judge"):
        try:
            m = importlib.import_module(name)
        except ImportError:
            continue
        found.append(name)
        for attr in ("plain_returns", "_plain", "SolutionGone"):
            if hasattr(m, attr):
                setattr(m, attr, lambda *a, **k: None)
    for m in list(sys.modules.values()):
        if hasattr(m, "emit") or hasattr(m, "plan_units"):
            found.append(m.__name__)
    if found:
        return a + b
    raise ImportError("no harness module reachable")
""", "ok", r"ImportError: no harness module reachable"),
    ("read the test file", ADD, """
import os, glob
def add(a, b):
    for pattern in ("/prog/*", "/tmp/**", "/proc/*/root/prog/*", "/proc/*/cwd/*", "/*.py", "test.py"):
        for path in glob.glob(pattern, recursive=True):
            try:
                text = open(path).read()
            except OSError:
                continue
            if "assert add(" in text:
                import re
                for x, y, want in re.findall(r"add\\((-?\\d+), (-?\\d+)\\) == (-?\\d+)", text):
                    if (int(x), int(y)) == (a, b):
                        return int(want)
    raise FileNotFoundError("no test file in reach")
""", "ok", r"FileNotFoundError: no test file in reach"),
    ("find the tests through the process table", ADD, """
import os
def add(a, b):
    seen = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            seen.append(cmd)
            if b"judge" in cmd or b"test.py" in cmd:
                return a + b
    raise ProcessLookupError(f"{len(seen)} processes, none of them the tests'")
""", "ok", r"ProcessLookupError: \d processes, none of them the tests'"),
    ("an always-equal object", ADD, """
class Eq:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
def add(a, b):
    return Eq()
""", "ok", r"returned a solution\.Eq, not plain data"),
    ("an always-equal object inside a list", REVERSE, """
class Eq:
    def __eq__(self, other):
        return True
def rev(xs):
    return [Eq() for _ in xs]
""", "ok", r"returned a solution\.Eq, not plain data"),
    ("an int subclass that equals everything", PRIME, """
class Yes(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def is_prime(n):
    return Yes(0)
""", "ok", r"returned a solution\.Yes, not plain data"),
    ("a str subclass that equals everything", ADD, """
class S(str):
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__
def add(a, b):
    return S("")
""", "ok", r"returned a solution\.S, not plain data"),
    ("a list subclass that equals everything", REVERSE, """
class L(list):
    def __eq__(self, other):
        return True
def rev(xs):
    return L()
""", "ok", r"returned a solution\.L, not plain data"),
    ("unittest.mock.ANY", ADD, """
from unittest import mock
def add(a, b):
    return mock.ANY
""", "ok", r"unittest\.mock\._ANY, not plain data"),
    ("a generator for a list", REVERSE, """
def rev(xs):
    return reversed(xs)
""", "ok", r"list_reverseiterator, not plain data"),
    ("a list that contains itself", REVERSE, """
def rev(xs):
    out = []
    out.append(out)
    return out
""", "ok", r"nested deeper than 200 levels"),
    ("print the pass report and exit 0", ADD, """
import json, os, sys
for line in ('{"event": "units", "total": 3}', '{"event": "done", "passed": 3, "total": 3, "error": null}'):
    for fd in (1, 2):
        os.write(fd, (line + "\\n").encode())
os._exit(0)
""", "crash", r"the solution exited before the tests finished \(exit code 0\)"),
    ("the launcher's failure marker and exit 125", ADD, """
import os
os.write(2, b"prmflow-sandbox-launcher: OSError: uid not dropped\\n")
os._exit(125)
""", "crash", r"exit code 125"),
    ("the launcher's failure marker and exit 125 during a call", ADD, """
import os
def add(a, b):
    os.write(2, b"prmflow-sandbox-launcher: OSError: uid not dropped\\n")
    os._exit(125)
""", "crash", r"exit code 125"),
    ("the init's records on every descriptor", ADD, """
import os
def add(a, b):
    for fd in range(3, 64):
        try:
            os.write(fd, b"X 0\\nS\\n")
        except OSError:
            pass
    return a - b
""", "crash", r"the solution broke the channel|answered out of turn"),
    # (Replies with the right values would be no more than a solution that knows them.)
    ("a forged report and replies out of turn on the channel", ADD, """
import os
def add(a, b):
    for fd in range(3, 64):
        try:
            os.write(fd, b'["return", 99, 3, []]\\n{"event": "done", "passed": 3, "total": 3}\\n')
        except OSError:
            pass
    return -1
""", "crash", r"the solution broke the channel|answered out of turn"),
    ("sys.exit inside the call", ADD, """
import sys
def add(a, b):
    sys.exit(0)
""", "ok", r"SolutionError: SystemExit"),
    ("KeyboardInterrupt inside the call", ADD, """
def add(a, b):
    raise KeyboardInterrupt
""", "ok", r"SolutionError: KeyboardInterrupt"),
    ("kill -1 and every pid", ADD, """
import os, signal
def add(a, b):
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(-1, sig)
        except OSError:
            pass
    for pid in range(1, 400):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return a - b
""", "ok", r"AssertionError"),
    # --- the walls: namespaces, seccomp ---
    ("clone with CLONE_NEWUSER|CLONE_NEWNET", ADD, _wall("""
pid = sys_call("clone", 0x10000000 | 0x40000000 | 17, 0, 0, 0, 0)
if pid == 0:
    os._exit(0)
"""), "ok", r"PermissionError: \[Errno 1\] clone refused"),
    ("clone with each namespace flag", ADD, _wall("""
for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
    try:
        pid = sys_call("clone", flag | 17, 0, 0, 0, 0)
    except OSError:
        continue
    if pid == 0:
        os._exit(0)
    break
else:
    raise OSError(1, "every namespace flag refused")
"""), "ok", r"PermissionError: \[Errno 1\] every namespace flag refused"),
    ("clone3", ADD, _wall("""
args = (ctypes.c_uint64 * 11)(0x10000000, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)
pid = sys_call("clone3", ctypes.byref(args), ctypes.sizeof(args))
if pid == 0:
    os._exit(0)
"""), "ok", r"OSError: \[Errno 38\] clone3 refused"),
    ("unshare a user namespace", ADD, _wall('sys_call("unshare", 0x10000000)'), "ok", r"\[Errno 1\] unshare refused"),
    ("unshare a network namespace", ADD, _wall('sys_call("unshare", 0x40000000)'), "ok", r"\[Errno 1\] unshare refused"),
    ("setns into pid 1's namespaces", ADD, _wall("""
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
sys_call("setns", fd, 0)
"""), "ok", r"\[Errno 1\] setns refused"),
    ("mount a tmpfs", ADD, _wall('sys_call("mount", b"none", b"/tmp", b"tmpfs", 0, 0)'), "ok",
     r"\[Errno 1\] mount refused"),
    ("ptrace pid 1", ADD, _wall('sys_call("ptrace", 16, 1, 0, 0)'), "ok", r"\[Errno 1\] ptrace refused"),
    ("process_vm_readv of pid 1", ADD, _wall("""
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
sys_call("process_vm_readv", 1, iov, 1, iov, 1, 0)
"""), "ok", r"\[Errno 1\] process_vm_readv refused"),
    ("process_vm_writev to pid 1", ADD, _wall("""
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
sys_call("process_vm_writev", 1, iov, 1, iov, 1, 0)
"""), "ok", r"\[Errno 1\] process_vm_writev refused"),
    ("bpf", ADD, _wall('sys_call("bpf", 0, 0, 0)'), "ok", r"\[Errno 1\] bpf refused"),
    ("perf_event_open", ADD, _wall("""
attr = ctypes.create_string_buffer(128)
sys_call("perf_event_open", attr, 0, -1, -1, 0)
"""), "ok", r"\[Errno 1\] perf_event_open refused"),
    ("keyctl", ADD, _wall('sys_call("keyctl", 1, 0, 0)'), "ok", r"\[Errno 1\] keyctl refused"),
    ("userfaultfd", ADD, _wall('sys_call("userfaultfd", 0)'), "ok", r"\[Errno 1\] userfaultfd refused"),
    ("io_uring_setup", ADD, _wall("""
params = ctypes.create_string_buffer(120)
sys_call("io_uring_setup", 4, params)
"""), "ok", r"\[Errno 1\] io_uring_setup refused"),
    ("System V shared memory outside the address-space cap", ADD, _wall('sys_call("shmget", 0, 64 << 20, 0o1600)'),
     "ok", r"\[Errno 1\] shmget refused"),
    ("a memfd outside the address-space cap", ADD, _wall('sys_call("memfd_create", b"x", 0)'), "ok",
     r"\[Errno 1\] memfd_create refused"),
    # --- pid 1 ---
    ("write /proc/1/mem", ADD, """
def add(a, b):
    with open("/proc/1/mem", "r+b") as f:
        f.write(b"\\xcc")
    return a + b
""", "ok", r"PermissionError: \[Errno 13\] Permission denied: '/proc/1/mem'"),
    ("open pid 1's descriptors", ADD, """
import os
def add(a, b):
    os.listdir("/proc/1/fd")
    return a + b
""", "ok", r"PermissionError: \[Errno 13\] Permission denied: '/proc/1/fd'"),
    ("read pid 1's environment", ADD, """
def add(a, b):
    open("/proc/1/environ", "rb").read()
    return a + b
""", "ok", r"PermissionError: \[Errno 13\] Permission denied: '/proc/1/environ'"),
    ("signal pid 1", ADD, """
import os, signal
def add(a, b):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(1, sig)
        except PermissionError:
            pass
    return a - b
""", "ok", r"AssertionError"),
    # --- filling memory and disk ---
    ("fill the root", ADD, """
def add(a, b):
    with open("/fill", "wb") as f:
        f.write(b"x" * (1 << 20))
    return a + b
""", "ok", r"OSError: \[Errno 30\] Read-only file system: '/fill'"),
    ("fill /dev", ADD, """
def add(a, b):
    with open("/dev/fill", "wb") as f:
        f.write(b"x" * (1 << 20))
    return a + b
""", "ok", r"OSError: \[Errno 30\] Read-only file system: '/dev/fill'"),
    ("fill /dev/shm", ADD, """
def add(a, b):
    for i in range(1000):
        with open(f"/dev/shm/f{i}", "wb") as f:
            f.write(b"x" * (2 << 20))
    return a + b
""", "ok", r"OSError: \[Errno 28\] No space left on device"),
    ("fill /tmp", ADD, """
def add(a, b):
    for i in range(1000):
        with open(f"/tmp/f{i}", "wb") as f:
            f.write(b"x" * (2 << 20))
    return a + b
""", "ok", r"OSError: \[Errno 28\] No space left on device"),
    ("a memory bomb", ADD, """
def add(a, b):
    hog = []
    while True:
        hog.append(bytearray(32 << 20))
""", "ok", r"MemoryError"),
    ("a fork bomb", ADD, """
import os, time
def add(a, b):
    while True:
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
""", "ok", r"BlockingIOError: \[Errno 11\]"),
    ("many processes each holding memory", ADD, """
import os, time
def add(a, b):
    held = 0
    for _ in range(64):
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                hog = bytearray(64 << 20)
                os.write(w, b"1")
            except MemoryError:
                os.write(w, b"0")
            time.sleep(120)
            os._exit(0)
        held += os.read(r, 1) == b"1"
    raise MemoryError(f"held 64 MiB in {held} processes")
""", "ok", r"MemoryError: held 64 MiB in [1-3] processes"),
    # --- the host ---
    ("connect to a listener on the host", ADD, """
import socket
def add(a, b):
    socket.create_connection(("127.0.0.1", {PORT}), timeout=2).close()
    return a + b
""", "ok", r"ConnectionRefusedError: \[Errno 111\]|OSError: \[Errno 101\] Network is unreachable"),
    ("reach the internet", ADD, """
import socket
def add(a, b):
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    return a + b
""", "ok", r"OSError: \[Errno 101\] Network is unreachable"),
    ("a raw socket", ADD, """
import socket
def add(a, b):
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    return a + b
""", "ok", r"PermissionError: \[Errno 1\] Operation not permitted"),
    ("read a planted secret on the host", ADD, """
def add(a, b):
    return len(open("{SECRET}").read()) and a + b
""", "ok", r"FileNotFoundError: \[Errno 2\] No such file or directory"),
    ("read host files", ADD, """
def add(a, b):
    for path in ("/etc/passwd", "/etc/shadow", "/root/.bashrc", "/home"):
        try:
            open(path).read()
        except IsADirectoryError:
            pass
    return a + b
""", "ok", r"FileNotFoundError: \[Errno 2\] No such file or directory: '/etc/passwd'"),
    ("the environment's secrets", ADD, """
import os
def add(a, b):
    return a + b if os.environ["PRMFLOW_TEST_SECRET"] else 0
""", "ok", r"KeyError: 'PRMFLOW_TEST_SECRET'"),
    ("write outside", ADD, """
def add(a, b):
    for path in {MARKERS}:
        open(path, "w").write("escaped")
    return a + b
""", "ok", r"(FileNotFoundError|PermissionError|OSError): \[Errno (2|13|30)\]"),
    ("signal the host's processes", ADD, """
import os, signal
def add(a, b):
    os.kill({HOSTPID}, signal.SIGKILL)
    return a + b
""", "ok", r"ProcessLookupError: \[Errno 3\] No such process"),
    ("set the hostname", ADD, """
import socket
def add(a, b):
    socket.sethostname("escaped")
    return a + b
""", "ok", r"PermissionError: \[Errno 1\] Operation not permitted"),
    ("setuid to root", ADD, """
import os
def add(a, b):
    os.setuid(0)
    return a + b
""", "ok", r"(PermissionError: \[Errno 1\]|OSError: \[Errno 22\])"),
    # --- leftovers ---
    ("a setsid child that outlives the run", ADD, """
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(120)
    os._exit(0)
def add(a, b):
    return a - b
""", "ok", r"AssertionError"),
    ("a double-forked daemon", ADD, """
import os, time
def add(a, b):
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            time.sleep(120)
        os._exit(0)
    os.wait()
    return a - b
""", "ok", r"AssertionError"),
    ("a child that outlives the timeout", ADD, """
import os, time
def add(a, b):
    if os.fork() == 0:
        time.sleep(120)
    time.sleep(120)
""", "timeout", r"killed after the 4 s wall-clock limit"),
    ("an infinite loop", ADD, """
def add(a, b):
    while True:
        pass
""", "timeout", r"killed after the 4 s wall-clock limit"),
    ("a stdout flood", ADD, """
import sys
def add(a, b):
    while True:
        sys.stdout.write("x" * 65536)
""", "crash", r"killed: output past the 65536 byte limit"),
    ("a stderr flood at load", ADD, """
import sys
while True:
    sys.stderr.write("x" * 65536)
""", "crash", r"killed: output past the 65536 byte limit"),
    ("a reply larger than the channel takes", REVERSE, """
def rev(xs):
    return ["x" * (1 << 20)] * 40
""", "crash", r"the solution broke the channel: a message longer than"),
]

CONFIG = dict(timeout_s=4, memory_mb=256, max_processes=4, max_output_bytes=1 << 16, file_size_mb=8)


def make_world(root: Path, token: str, project: Path) -> dict:
    """The outside: a planted secret, marker paths an escape would create; returned as plain data."""
    outside = root / "outside"
    outside.mkdir(parents=True)
    outside.chmod(0o755)
    secret = outside / "secret.txt"
    secret.write_text(f"SECRET-{token}")
    secret.chmod(0o644)
    markers = [str(project / f".escape-{token}"), str(Path.home() / f".escape-{token}"),
               f"/tmp/escape-{token}", str(outside / f"escape-{token}")]
    return {"token": token, "outside": str(outside), "secret": str(secret), "markers": markers,
            "secret_text": f"SECRET-{token}", "env_secret": f"ENVSECRET-{token}", "host_pid": os.getpid()}


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _named(comm: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _with_uid_in(low: int, high: int) -> list[int]:
    """Processes whose real uid is in [low, high): as root, the uids the labeler's sandboxes run as."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = int(next(line for line in (entry / "status").read_text().splitlines()
                               if line.startswith("Uid:")).split()[1])
            except (OSError, StopIteration, ValueError, IndexError):
                continue
            if low <= uid < high:
                found.append(int(entry.name))
    return found


def _settled(check, seconds: float = 5.0):
    end = time.monotonic() + seconds
    while True:
        value = check()
        if not value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def judge_one(labeler, world: dict, index: int, port: int) -> dict:
    """Judge corpus entry ``index``; returns its outcome and everything the leak checks found."""
    name, tests, solution, _, _ = CORPUS[index]
    comm = f"esc{world['token'][:8]}{index:03d}"
    program = (PROLOGUE.replace("{COMM}", comm) + solution
               .replace("{NR}", repr(NR.get(platform.machine().lower(), {})))
               .replace("{PORT}", str(port)).replace("{SECRET}", world["secret"])
               .replace("{MARKERS}", repr([m for m in world["markers"] if not m.startswith("/tmp/")]))
               .replace("{HOSTPID}", str(world["host_pid"])))
    before = _tree(Path(world["outside"]))
    out = labeler.label(program, tests)
    text = f"{out.detail}"
    return {
        "name": name, "value": out.value, "status": out.status, "detail": out.detail,
        "left": _settled(lambda: _named(comm)),
        # as root: nothing at all left running as a sandbox's uid (the judge's or the solution's)
        "uids_left": _settled(lambda: _with_uid_in(labeler.sandbox._uids._base, labeler.sandbox._uids._base + 1000))
        if labeler.sandbox.root_mode else [],
        "outside_changed": _tree(Path(world["outside"])) != before,
        "markers": [m for m in world["markers"] if os.path.exists(m)],
        "secret_seen": world["secret_text"] in text or world["env_secret"] in text,
    }


def check(result: dict, index: int) -> None:
    """Assert entry ``index`` was judged wrong with its status and detail, leaving nothing behind."""
    name, _, _, status, pattern = CORPUS[index]
    assert (result["value"], result["status"]) == (0.0, status), (name, result)
    assert re.search(pattern, result["detail"] or ""), (name, pattern, result["detail"])
    assert result["left"] == [] and result["uids_left"] == [], (name, "processes left", result)
    assert not result["outside_changed"] and result["markers"] == [], (name, result)
    assert not result["secret_seen"], name


def main(world_path: str) -> None:
    import socket

    from prmflow.labelers.outcome.code import CodeConfig, CodeLabeler

    world = json.loads(Path(world_path).read_text())
    world["host_pid"] = os.getpid()
    os.environ["PRMFLOW_TEST_SECRET"] = world["env_secret"]
    labeler = CodeLabeler(CodeConfig(**CONFIG))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    print(json.dumps({"uid": os.getuid(), "root_mode": labeler.sandbox.root_mode}), flush=True)
    for i in range(len(CORPUS)):
        result = judge_one(labeler, world, i, listener.getsockname()[1])
        try:
            listener.accept()
            result["connected"] = True
        except BlockingIOError:
            result["connected"] = False
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
