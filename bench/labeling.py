"""Exhaustive Monte-Carlo (Math-Shepherd) vs binary search (OmegaPRM), side by side in one run.

Both label the same trajectories (same config seed: sampling is reproducible) of the embedded arith
domain, whose checker gives every step its exact truth. Prints rollouts and tokens spent, first-error
accuracy on wrong trajectories and the ProcessBench F1 of each, and the ratios.
Goal (issue 5): binary search within 2% of MC's first-error accuracy with at most 0.35x its rollouts.

    python bench/labeling.py [--problems 100] [--samples 4] [--rollouts 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

from prmflow.analysis import connect  # noqa: E402
from prmflow.analysis.gold import gold_metrics_dicts  # noqa: E402
from prmflow.pipelines.label import run  # noqa: E402


def config(method: str, args) -> dict:
    return {
        "name": f"bench-{method}",
        "seed": 0,
        "inputs": [{"name": "arith", "format": "arith", "count": args.problems, "seed": 5, "import_solutions": False}],
        "sampler": {"backend": "vllm", "model": args.model, "dtype": "float32", "max_model_len": 256,
                    "kv_cache_memory_bytes": 512 << 20, "block_size": 32, "enforce_eager": True},
        "sampling": {"n": args.samples, "temperature": 1.0, "max_tokens": 96, "template": "arith", "batch_size": 256},
        "outcome": {"labeler": "math", "options": {"timeout_s": None}},
        "process": {"method": method, "rollouts": args.rollouts, "max_tokens": 96, "batch_trajectories": 64},
    }


def measure(method: str, args, work: Path) -> dict:
    path = work / f"{method}.yaml"
    path.write_text(yaml.safe_dump(config(method, args)))
    manifest = run([str(path), "--output", str(work / method)])
    con = connect(str(work / method))
    (gold,) = [m for m in gold_metrics_dicts(con) if m["method"] == method]
    wrong = con.execute("SELECT count(*) FROM trajectories WHERE outcome = 0").fetchone()[0]
    engine = manifest["counts"]["engine"]
    return {
        "trajectories": manifest["counts"]["trajectories_rows"]["all"],
        "wrong_outcome": wrong,
        "rollouts": engine.get("rollout_samples", 0),
        "rollout_tokens": engine.get("rollout_generated_tokens", 0),
        "seconds": manifest["timings"]["wall_seconds"],
        **gold,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:arith-tiny")
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=8)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = {m: measure(m, args, Path(tmp)) for m in ("mc", "binary-search")}
    mc, bs = results["mc"], results["binary-search"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model}; "
          f"{args.problems} problems x {args.samples} samples, M = {args.rollouts} rollouts per start state")
    keys = ["trajectories", "wrong_outcome", "erroneous", "rollouts", "rollout_tokens", "acc_erroneous",
            "acc_correct", "processbench_f1", "step_accuracy", "error_precision", "error_recall", "seconds"]
    print(f"{'':<18}{'mc':>14}{'binary-search':>16}")
    for k in keys:
        a, b = mc.get(k), bs.get(k)
        fmt = (lambda v: f"{v:.3f}") if isinstance(a, float) or isinstance(b, float) else (lambda v: str(v))
        print(f"{k:<18}{fmt(a) if a is not None else '-':>14}{fmt(b) if b is not None else '-':>16}")
    print(f"rollouts ratio binary-search/mc: {bs['rollouts'] / max(1, mc['rollouts']):.3f}")
    print(f"tokens ratio binary-search/mc:   {bs['rollout_tokens'] / max(1, mc['rollout_tokens']):.3f}")
    print(f"first-error accuracy difference (bs - mc, wrong trajectories): {bs['acc_erroneous'] - mc['acc_erroneous']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
