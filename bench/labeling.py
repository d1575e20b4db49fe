"""Exhaustive Monte-Carlo (Math-Shepherd), binary search (OmegaPRM), an LLM judge and consensus,
side by side in one run.

All label the same trajectories (same config seed: sampling is reproducible) of the embedded arith
domain, whose checker gives every step its exact truth. Prints rollouts and tokens spent (rollouts
and judge), first-error accuracy, first-error precision and the ProcessBench F1 of each, the
fraction of trajectories consensus keeps, and the ratios.
Goals: binary search within 2% of MC's first-error accuracy with at most 0.35x its rollouts (issue
5); consensus's first-error precision above both MC's and the judge's (Qwen "Lessons", issue 11).

    python bench/labeling.py [--problems 100] [--samples 4] [--rollouts 8] [--judge builtin:arith-judge-tiny]

The cost frontier (``--frontier``): exhaustive MC, binary search and their adaptive options
(``process.sequential``, ``process.adaptive``), clean and behind a symmetric noisy verifier
(``--noise 0.1``, with the noise-aware test at the true rates), each the median over ``--seeds``
(problem sets and sampling seeds). Rollouts and tokens per labelled step are given as a ratio to
exhaustive MC's on the same trajectories; goals (issue 29): <= 0.07x MC's rollouts at ProcessBench F1
>= MC's (clean), and at p = 0.1, F1 >= noise-aware MC's at <= 0.5x its rollouts.

    python bench/labeling.py --frontier [--seeds 0,1,2] [--noise 0.1]
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
from prmflow.models import MODELS_DIR  # noqa: E402
from prmflow.pipelines.label import run  # noqa: E402

DEFAULT_JUDGE = "builtin:arith-judge-tiny"
JUDGE_SHIPPED = (MODELS_DIR / "arith-judge-tiny" / "config.json").is_file()


def judge_section(args) -> dict:
    return {
        "sampler": {"backend": "vllm", "model": args.judge, "dtype": "float32", "max_model_len": args.judge_context,
                    "kv_cache_memory_bytes": 512 << 20, "block_size": 32, "enforce_eager": True},
        "template": "first-error", "votes": args.judge_votes, "temperature": args.judge_temperature,
        "max_tokens": 192, "batch_size": 256,
    }


def config(method: str, args) -> dict:
    extra = {"judge": judge_section(args)} if args.judge else {}
    return {
        **extra,
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
    rows = {m["method"]: m for m in gold_metrics_dicts(con)}
    wrong = con.execute("SELECT count(*) FROM trajectories WHERE outcome = 0").fetchone()[0]
    engine = manifest["counts"]["engine"]
    out = {method: {
        "trajectories": manifest["counts"]["trajectories_rows"]["all"],
        "wrong_outcome": wrong,
        "rollouts": engine.get("rollout_samples", 0),
        "rollout_tokens": engine.get("rollout_generated_tokens", 0),
        "seconds": manifest["timings"]["wall_seconds"],
        **rows[method],
    }}
    if "judge" in rows:
        out["judge"] = {"judge_tokens": engine.get("judge_generated_tokens", 0), **rows["judge"]}
        out[f"{method}+consensus"] = {
            "rollouts": out[method]["rollouts"], "judge_tokens": out["judge"]["judge_tokens"],
            **rows[f"{method}+consensus"]}
    return out


FRONTIER = {  # name -> (method, process options); "aware" variants get the noise-aware test at the true rates
    "mc": ("mc", {}),
    "mc+seq": ("mc", {"sequential": True}),
    "bs": ("binary-search", {}),
    "bs+seq": ("binary-search", {"sequential": True}),
    "bs+adaptive": ("binary-search", {"sequential": True, "adaptive": {"confidence": 0.9}}),
    # with the judge's votes (--judge): wrong trajectories whose first error the judge is sure of skip rollouts
    "bs+adaptive+active": ("binary-search", {"sequential": True, "adaptive": {"confidence": 0.9},
                                             "active": {"score": "judge", "confidence": 0.9}}),
}
JUDGED = ("bs+adaptive+active",)


def frontier_config(name: str, seed: int, noise: float, args) -> dict:
    method, options = FRONTIER[name]
    cfg = config(method, args)
    if name not in JUDGED:
        cfg.pop("judge", None)
    cfg["name"] = f"frontier-{name}"
    cfg["seed"] = seed
    cfg["inputs"][0]["seed"] = 100 + seed
    cfg["process"].update(options)
    if noise:
        cfg["outcome"]["noise"] = {"p": noise, "seed": seed}
        cfg["process"]["noise_aware"] = {"rho0": noise, "rho1": noise}
    return cfg


def measure_frontier(name: str, seed: int, noise: float, args, work: Path) -> dict:
    path = work / f"{name}-{seed}-{noise}.yaml"
    path.write_text(yaml.safe_dump(frontier_config(name, seed, noise, args)))
    out_dir = work / f"{name}-{seed}-{noise}"
    manifest = run([str(path), "--output", str(out_dir)])
    con = connect(str(out_dir))
    method = FRONTIER[name][0]
    row = {m["method"]: m for m in gold_metrics_dicts(con)}[method]
    steps = con.execute("SELECT count(*) FROM steps WHERE label IS NOT NULL").fetchall()[0][0]
    engine = manifest["counts"]["engine"]
    return {"rollouts": engine.get("rollout_samples", 0), "rollout_tokens": engine.get("rollout_generated_tokens", 0),
            "skipped": engine.get("rollout_active_skipped", 0),
            "labelled_steps": steps, "processbench_f1": row["processbench_f1"], "step_accuracy": row["step_accuracy"],
            "acc_erroneous": row["acc_erroneous"], "acc_correct": row["acc_correct"]}


def frontier(args) -> int:
    import statistics

    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in FRONTIER if n not in JUDGED or args.judge]
    if args.variants:
        names = ["mc"] + [n for n in args.variants.split(",") if n != "mc"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model}; {args.problems} problems x "
          f"{args.samples} samples, M = {args.rollouts}; seeds {seeds}; medians over seeds")
    for noise in (0.0, args.noise) if args.noise else (0.0,):
        per: dict[str, list[dict]] = {name: [] for name in names}
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                for name in names:
                    per[name].append(measure_frontier(name, seed, noise, args, Path(tmp)))
        label = "clean verifier" if not noise else f"symmetric noise p = {noise}, noise-aware test at the true rates"
        print(f"\n{label}")
        cols = ["rollouts", "rollout_tokens", "labelled_steps", "rollouts/step vs mc", "tokens/step vs mc",
                "processbench_f1", "f1 - mc", "step_accuracy", "acc_erroneous", "acc_correct", "skipped"]
        print(f"{'':<20}" + "".join(f"{c:>21}" for c in cols))
        for name in names:
            ratios = [(r["rollouts"] / r["labelled_steps"]) / (m["rollouts"] / m["labelled_steps"])
                      for r, m in zip(per[name], per["mc"], strict=True)]
            tok = [(r["rollout_tokens"] / r["labelled_steps"]) / (m["rollout_tokens"] / m["labelled_steps"])
                   for r, m in zip(per[name], per["mc"], strict=True)]
            df1 = [r["processbench_f1"] - m["processbench_f1"] for r, m in zip(per[name], per["mc"], strict=True)]
            def med(k, rows=per[name]):
                return statistics.median(r[k] for r in rows)
            cells = [f"{med('rollouts'):.0f}", f"{med('rollout_tokens'):.0f}", f"{med('labelled_steps'):.0f}",
                     f"{statistics.median(ratios):.3f}", f"{statistics.median(tok):.3f}", f"{med('processbench_f1'):.3f}",
                     f"{statistics.median(df1):+.3f}", f"{med('step_accuracy'):.3f}", f"{med('acc_erroneous'):.3f}",
                     f"{med('acc_correct'):.3f}", f"{med('skipped'):.0f}"]
            print(f"{name:<20}" + "".join(f"{c:>21}" for c in cells))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frontier", action="store_true", help="the cost frontier: adaptive options vs MC, clean and noisy")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--noise", type=float, default=0.1, help="the noisy verifier's p (0: clean only)")
    ap.add_argument("--variants", default="", help="frontier rows to run besides mc, comma-separated (default: all)")
    ap.add_argument("--model", default="builtin:arith-tiny")
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--judge", default=DEFAULT_JUDGE if JUDGE_SHIPPED else None,
                    help="judge model (default: builtin:arith-judge-tiny when shipped); '' for none")
    ap.add_argument("--judge-votes", type=int, default=4)
    ap.add_argument("--judge-temperature", type=float, default=0.7)
    ap.add_argument("--judge-context", type=int, default=768)
    args = ap.parse_args(argv)
    if args.frontier:
        return frontier(args)
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, dict] = {}
        for m in ("mc", "binary-search"):
            results.update(measure(m, args, Path(tmp)))
    mc, bs = results["mc"], results["binary-search"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model}; judge {args.judge or 'none'}; "
          f"{args.problems} problems x {args.samples} samples, M = {args.rollouts} rollouts per start state")
    columns = [c for c in ("mc", "binary-search", "judge", "mc+consensus", "binary-search+consensus") if c in results]
    keys = ["trajectories", "wrong_outcome", "erroneous", "correct", "kept", "rollouts", "rollout_tokens",
            "judge_tokens", "acc_erroneous", "acc_correct", "processbench_f1", "first_error_precision",
            "step_accuracy", "error_precision", "error_recall", "seconds"]
    print(f"{'':<22}" + "".join(f"{c:>24}" for c in columns))
    for k in keys:
        cells = []
        for c in columns:
            v = results[c].get(k)
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"{k:<22}" + "".join(f"{x:>24}" for x in cells))
    print(f"rollouts ratio binary-search/mc: {bs['rollouts'] / max(1, mc['rollouts']):.3f}")
    print(f"tokens ratio binary-search/mc:   {bs['rollout_tokens'] / max(1, mc['rollout_tokens']):.3f}")
    print(f"first-error accuracy difference (bs - mc, wrong trajectories): {bs['acc_erroneous'] - mc['acc_erroneous']:+.3f}")
    if "judge" in results:
        for m in ("mc", "binary-search"):
            c, j, base = results[f"{m}+consensus"], results["judge"], results[m]
            print(f"{m}+consensus first-error precision {c['first_error_precision'] or 0:.3f} vs {m} "
                  f"{base['first_error_precision'] or 0:.3f} and judge {j['first_error_precision'] or 0:.3f}; "
                  f"keeps {c['kept']:.3f} of the trajectories")
    return 0


if __name__ == "__main__":
    sys.exit(main())
