"""Sandboxed code grading throughput: HumanEval's canonical solutions, sequential vs parallel.

Each execution is a fresh bubblewrap sandbox (namespaces, rlimits, a private tmpfs) running the
solution and its tests in a new Python; the parallel run uses one worker per available core. Prints
executions/s, side by side, with 1 worker, one per core and the labeler's default (WORKERS_PER_CORE
per core: executions wait on namespace setup more than they compute), and the ratios; every verdict
must be 1.0, so a broken sandbox cannot look fast.

    python bench/grading_code.py [--problems 164] [--workers N ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import time
from pathlib import Path

from prmflow.labelers.outcome.code import WORKERS_PER_CORE, CodeConfig, CodeLabeler, humaneval_tests
from prmflow.sandbox.pool import default_workers
from prmflow.sources.humaneval import solution_steps

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"


def load(path: Path, n: int) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:n]
    return [("\n".join(solution_steps(r["canonical_solution"])), humaneval_tests(r["prompt"], r["test"], r["entry_point"]))
            for r in rows]


def measure(pairs: list[tuple[str, str]], workers: int) -> dict:
    labeler = CodeLabeler(CodeConfig(workers=workers))
    start = time.perf_counter()
    outcomes = labeler.label_many(pairs)
    seconds = time.perf_counter() - start
    wrong = [o for o in outcomes if o.value != 1.0]
    if wrong:
        raise SystemExit(f"{len(wrong)} canonical solutions did not pass, e.g. {wrong[0]}")
    return {"workers": workers, "executions": len(pairs), "seconds": seconds, "per_s": len(pairs) / seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--workers", type=int, nargs="+",
                        default=sorted({default_workers(), WORKERS_PER_CORE * default_workers()}))
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    pairs = load(args.data, args.problems)
    print(f"# {platform.platform()}, {default_workers()} cores available; {len(pairs)} HumanEval executions")
    seq = measure(pairs, 1)
    print(f"{'run':<12}{'workers':>8}{'seconds':>10}{'exec/s':>10}{'speed-up':>10}")
    print(f"{'sequential':<12}{1:>8}{seq['seconds']:>10.2f}{seq['per_s']:>10.1f}{1:>9.2f}x")
    for workers in args.workers:
        m = measure(pairs, workers)
        print(f"{'parallel':<12}{workers:>8}{m['seconds']:>10.2f}{m['per_s']:>10.1f}{m['per_s'] / seq['per_s']:>9.2f}x")


if __name__ == "__main__":
    main()
