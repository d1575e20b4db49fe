"""Resume after a kill, on the real engine: how many rollouts a rerun spends again, side by side in one run.

An arith Math-Shepherd config (``examples/arith-mc.yaml`` scaled to ``--problems``) with the real
vLLM engine and the embedded policy ``builtin:arith-tiny`` goes through ``python -m prmflow run``:

- ``clean``: one uninterrupted run into a fresh output directory; its wall time is T and its
  manifest's ``counts.engine`` gives the samples and rollouts (``rollout_samples``) it spent;
- ``kill@F``: the same command into another fresh directory, its whole process group SIGKILLed at
  F x T (``--kill-at``, a comma list to sweep), then the same command again to completion. The
  stage cache (``OUT/_cache/<stage>/``, see ``prmflow/transforms/cache.py``) holds every batch the
  killed run finished; the rerun's manifest counts what it sampled anew (``samples``,
  ``rollout_samples``) and what it took from the cache (``reused_samples``,
  ``rollout_reused_samples``).

Printed per run: wall seconds (kill run and rerun), cache entries held at the kill, samples and
rollouts new/reused, the ratio rollouts re-spent / clean run's rollouts, and whether the rerun's
shards (md5 of every ``*.parquet`` of the table directories) equal the clean run's.
Goal (issue 13): a rerun after a kill during rollouts at 75% of the run's wall time re-spends
< 50% of the clean run's rollouts.

    python bench/resume.py [--problems 100] [--kill-at 0.75] [--rollouts 8] [--samples 4]
    python bench/resume.py --kill-at 0.25,0.5,0.75      # a sweep (one clean run, then one kill + rerun each)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def config(args) -> dict:
    """``examples/arith-mc.yaml`` with ``args.problems`` problems (and the given n, M, model)."""
    cfg = yaml.safe_load((REPO / "examples" / "arith-mc.yaml").read_text())
    cfg["name"] = "bench-resume"
    cfg["inputs"][0]["count"] = args.problems
    cfg["sampler"]["model"] = args.model
    cfg["sampling"]["n"] = args.samples
    cfg["process"]["rollouts"] = args.rollouts
    if args.batch_trajectories:
        cfg["process"]["batch_trajectories"] = args.batch_trajectories
    cfg["output"].pop("dir", None)  # --output decides
    return cfg


def command(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "prmflow", "run", str(cfg), "--output", str(out)]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    """A run in its own session (process group), so a kill reaches every process it started."""
    with log.open("ab") as f:
        return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ENV}, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(cmd: list[str], log: Path) -> float:
    """Wall seconds of a command that must succeed."""
    t0 = time.perf_counter()
    proc = start(cmd, log)
    proc.wait()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
    return seconds


def kill_after(cmd: list[str], log: Path, seconds: float) -> tuple[float, bool]:
    """Run ``cmd``, SIGKILL its process group after ``seconds``; (wall seconds, whether it was killed)."""
    t0 = time.perf_counter()
    proc = start(cmd, log)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - t0, killed


def cache_entries(out: Path, stage: str) -> int:
    """Finished batches the stage cache holds for ``stage``."""
    root = out / "_cache" / stage
    return sum(1 for _ in root.rglob("*.pkl")) if root.exists() else 0


def shard_digests(out: Path) -> dict[str, str]:
    """md5 of every Parquet shard of the table directories, by path relative to ``out``."""
    return {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.glob("*/*.parquet"))}


def engine_counts(out: Path) -> dict[str, int]:
    return json.loads((out / "manifest.json").read_text())["counts"].get("engine", {})


def spent(engine: dict[str, int]) -> dict[str, int]:
    """New and reused samples and rollouts from a manifest's ``counts.engine``."""
    return {"samples": engine.get("samples", 0), "reused_samples": engine.get("reused_samples", 0),
            "rollouts": engine.get("rollout_samples", 0), "reused_rollouts": engine.get("rollout_reused_samples", 0)}


def respent_ratio(rerun: dict[str, int], clean: dict[str, int]) -> float:
    """Rollouts the rerun sampled anew / rollouts of the clean run."""
    return rerun["rollouts"] / max(1, clean["rollouts"])


def fractions(text: str) -> list[float]:
    values = [float(x) for x in text.split(",") if x.strip()]
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--kill-at wants fractions in (0, 1), got {text!r}")
    return values


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:arith-tiny")
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--batch-trajectories", type=int, default=0, help="process.batch_trajectories (0: the default)")
    ap.add_argument("--kill-at", type=fractions, default=[0.75], help="comma list of fractions of the clean wall time")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (printed) instead of a temporary one")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    cfg = work / "arith-mc.yaml"
    cfg.write_text(yaml.safe_dump(config(args)))
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; model {args.model}, "
          f"{args.problems} problems x {args.samples} samples, M = {args.rollouts}"
          + (f"; work dir {work}" if args.keep else ""))
    header = (f"{'run':>10} {'kill s':>7} {'killed':>6} {'wall s':>7} {'rerun s':>8} {'cache s/r':>10}"
              f" {'samples new/reused':>19} {'rollouts new/reused':>20} {'re-spent':>9} {'identical':>9}")
    print(header, flush=True)
    rows = []
    try:
        clean_out = work / "clean"
        clean_s = finish(command(cfg, clean_out), work / "clean.log")
        clean = spent(engine_counts(clean_out))
        clean_digests = shard_digests(clean_out)
        rows.append({"run": "clean", "seconds": clean_s, **clean})
        print(f"{'clean':>10} {'-':>7} {'-':>6} {clean_s:>7.1f} {'-':>8} {'-':>10}"
              f" {clean['samples']:>10}/{clean['reused_samples']:<8} {clean['rollouts']:>11}/{clean['reused_rollouts']:<8}"
              f" {'-':>9} {'-':>9}", flush=True)
        for f in args.kill_at:
            out, log = work / f"kill-{f}", work / f"kill-{f}.log"
            kill_s, killed = kill_after(command(cfg, out), log, f * clean_s)
            held = (cache_entries(out, "sample"), cache_entries(out, "rollout"))
            rerun_s = finish(command(cfg, out), log)
            rerun = spent(engine_counts(out))
            ratio = respent_ratio(rerun, clean)
            identical = shard_digests(out) == clean_digests
            rows.append({"run": f"kill@{f}", "kill_seconds": kill_s, "killed": killed, "rerun_seconds": rerun_s,
                         "held_sample": held[0], "held_rollout": held[1], "respent": ratio, "identical": identical,
                         **rerun})
            print(f"{'kill@' + format(f, 'g'):>10} {kill_s:>7.1f} {'yes' if killed else 'no':>6} {kill_s + rerun_s:>7.1f}"
                  f" {rerun_s:>8.1f} {f'{held[0]}/{held[1]}':>10}"
                  f" {rerun['samples']:>10}/{rerun['reused_samples']:<8} {rerun['rollouts']:>11}/{rerun['reused_rollouts']:<8}"
                  f" {ratio:>9.3f} {'yes' if identical else 'no':>9}", flush=True)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    print("wall s of a kill run = kill run + rerun; cache s/r = stage-cache entries (sample/rollout batches) at the kill;"
          " re-spent = rollouts the rerun sampled anew / the clean run's rollouts (goal < 0.5 at kill@0.75)")
    return rows


if __name__ == "__main__":
    main()
