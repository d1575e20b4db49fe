"""The quick start, timed: the commands of the README's quickstart block (docs/quickstart.md where the
README has none) run as a newcomer runs them, in a scratch copy of examples/ with SmolLM2 from
``make models``; printed: each command's wall seconds, and the time from start to the first graded
output: the run's summary line, printed when its graded tables are published (a run publishes all
its tables at once, so that is the first output a user can read with inspect/sql).

    python bench/quickstart.py [--keep DIR]

Needs ``make models``. A figure, not a test: tests/test_quickstart.py checks what comes out.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from quickstart_steps import quickstart_commands  # noqa: E402

MODEL = REPO / ".cache" / "models" / "smollm2-135m-instruct"
SETUP = {"make models", ". .venv/bin/activate"}
GRADED = re.compile(r"^prmflow run '[^']*': [0-9.]+ s$")


def scratch(base: Path) -> Path:
    shutil.copytree(REPO / "examples", base / "examples")
    (base / ".cache" / "models").mkdir(parents=True)
    (base / ".cache" / "models" / MODEL.name).symlink_to(MODEL)
    (base / "bin").mkdir()
    shim = base / "bin" / "prmflow"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m prmflow \"$@\"\n")
    shim.chmod(0o755)
    return base


def timed(command: str, cwd: Path, env: dict, started: float, first: list) -> float:
    """Run ``command``, echoing its output; record in ``first`` when a graded-output line appears."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)

    def watch() -> None:
        for line in proc.stdout:
            sys.stdout.write(f"    | {line}")
            if not first and GRADED.match(line.strip()):
                first.append(time.monotonic() - started)

    reader = threading.Thread(target=watch)
    reader.start()
    rc = proc.wait()
    reader.join()
    if rc != 0:
        raise SystemExit(f"bench/quickstart.py: {command!r} exited {rc}")
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", default=None, help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    if not (MODEL / "config.json").is_file():
        raise SystemExit(f"bench/quickstart.py: {MODEL} is missing: run `make models` first")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prmflow-quickstart-"))
    base.mkdir(parents=True, exist_ok=True)
    scratch(base)
    env = {**os.environ, "PATH": f"{base / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    started, first, rows = time.monotonic(), [], []
    for command in quickstart_commands():
        if command in SETUP:
            continue
        print(f"$ {command}", flush=True)
        rows.append((command, timed(command, base, env, started, first)))
    total = time.monotonic() - started
    print("\nquick start, wall seconds per command:")
    for command, seconds in rows:
        print(f"  {seconds:8.1f}  {command}")
    print(f"  {total:8.1f}  total, start to a TRL file")
    print(f"  {first[0] if first else float('nan'):8.1f}  start to the first graded output")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
