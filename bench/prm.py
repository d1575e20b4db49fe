"""Does a PRM trained on prmflow's pseudo-labels help? PRMs of one size and budget, one per label source.

On the embedded arith domain (whose checker knows every step's truth): sample 4 solutions for each of
``--problems`` training problems with ``builtin:arith-tiny``, label them by exhaustive Monte-Carlo and by
binary search, export, and train one PRM per label source with ``prmflow train-prm`` (base
``builtin:arith-tiny``, the same epochs, batch, learning rate and seed for all):

* gold: the checker's exact step truth (the upper bound);
* MC hard (value > 0), MC soft (the value itself), binary search (OmegaPRM, hard);
* MC + consistency: MC hard labels weighted by MetaStone-S1 consistency with the outcome (round 1);
* round 2: the same MC labels, weighted by agreement of the round-1 PRM with the outcome (a ``prm``
  section scores every step, then ``consistency: {score: prm_score}``).

Every PRM is evaluated on ``--eval-problems`` held-out problems (another generator seed; any prompt also
in the training set is dropped), 8 sampled solutions each: step-level ProcessBench F1 and step accuracy
against the checker's truth (first error = first step scored <= 0.5), and best-of-8 final-answer
accuracy choosing the solution with the highest minimum step score, beside majority vote over the 8
final answers and a random pick (its exact expectation). Nothing is tuned on the evaluation problems.
Goals (issue 12): a pseudo-label PRM reaches >= 0.9x the gold PRM's F1; best-of-8 by it beats majority.

    python bench/prm.py [--problems 300] [--eval-problems 60] [--epochs 8] [--lr 1e-3]

Prints one table and writes it to bench/results/prm.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import yaml  # noqa: E402

from prmflow.analysis import connect  # noqa: E402
from prmflow.domains.arith import PROMPT_TEMPLATE  # noqa: E402
from prmflow.export.api import export  # noqa: E402
from prmflow.export.config import ExportConfig  # noqa: E402
from prmflow.pipelines.label import run  # noqa: E402
from prmflow.prm.config import parse_train_config  # noqa: E402
from prmflow.prm.metrics import step_metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "prm.md"
TRAIN_SEED, EVAL_SEED = 1, 7  # generator seeds: the demo's family for training, another for evaluation
SAMPLER = {"backend": "vllm", "model": "builtin:arith-tiny", "dtype": "float32", "max_model_len": 256,
           "kv_cache_memory_bytes": 268435456, "block_size": 32, "enforce_eager": True}
MC_CONSISTENCY = {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"}
PRM_CONSISTENCY = {"mode": "hard", "score": "prm_score", "threshold": 0.5, "ties": "negative"}


def run_config(name: str, count: int, seed: int, samples: int, process: dict | None, extra: dict) -> dict:
    config = {
        "name": name, "seed": 0,
        "inputs": [{"name": "arith", "format": "arith", "count": count, "seed": seed, "import_solutions": False}],
        "sampler": SAMPLER,
        "sampling": {"n": samples, "temperature": 1.0, "max_tokens": 96, "template": "arith", "batch_size": 400},
        "outcome": {"labeler": "math", "options": {"timeout_s": 5}},
        "output": {"num_shards": 1},
        **extra,
    }
    if process is not None:
        config["process"] = process
    return config


def pipeline(work: Path, name: str, config: dict) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    out = work / name
    started = time.monotonic()
    manifest = run([str(path), "--output", str(out)])
    if not manifest["reconciliation"]["ok"]:
        sys.exit(f"{name}: counts do not reconcile")
    print(f"[bench] {name}: {time.monotonic() - started:.0f} s", flush=True)
    return out


def export_labels(run_dir: Path, out: Path, label: str) -> Path:
    export(str(run_dir), str(out), ExportConfig(format="prmflow", label=label, val_fraction=0.05, seed=0,
                                                 overwrite=True))
    return out


def train_prm(data: Path, out: Path, args, use_weights: bool) -> tuple[str, float]:
    import torch

    from prmflow.prm.train import train

    torch.set_num_threads(args.threads)  # OMP_NUM_THREADS=1 is for the in-process engine, not training
    config = parse_train_config({
        "data": str(data), "output": str(out), "base_model": "builtin:arith-tiny", "use_weights": use_weights,
        "epochs": args.epochs, "lr": args.lr, "batch_size": 16, "max_length": 256, "seed": 0, "device": "cpu",
        "prompt_template": PROMPT_TEMPLATE, "overwrite": True,
    })
    result = train(config, progress=False)
    print(f"[bench] trained {out.name} in {result.seconds:.0f} s: {result.history[-1]}", flush=True)
    return result.output, result.seconds


def eval_set(eval_dir: Path, train_dir: Path) -> dict[str, list[dict]]:
    """Held-out problem id -> its sampled solutions (prompt, steps, answer, outcome, gold first error)."""
    seen = {p for (p,) in connect(str(train_dir)).execute("SELECT prompt FROM problems").fetchall()}
    rows = connect(str(eval_dir)).execute("""
        SELECT t.problem_id, p.prompt, t.steps, t.final_answer, t.outcome, t.gold_first_error, t.sample_index
        FROM trajectories t JOIN problems p USING (problem_id)
        ORDER BY t.problem_id, t.sample_index""").fetchall()
    problems: dict[str, list[dict]] = {}
    for pid, prompt, steps, answer, outcome, gold_fe, _ in rows:
        if prompt in seen:
            continue
        problems.setdefault(pid, []).append({"prompt": prompt, "steps": list(steps), "answer": answer,
                                             "right": outcome == 1.0, "gold_fe": gold_fe})
    return problems


def gold_prefix(n: int, first_error: int) -> list[float]:
    return [1.0 if first_error < 0 or i < first_error else 0.0 for i in range(n)]


def evaluate(prm_dir: str, problems: dict[str, list[dict]]) -> dict:
    from prmflow.prm.scorer import PRMScorer

    scorer = PRMScorer(prm_dir, device="cpu", batch_size=32)
    flat = [s for sols in problems.values() for s in sols]
    scores = scorer.score_many([(s["prompt"], s["steps"]) for s in flat])
    pairs = [(sc, gold_prefix(len(s["steps"]), s["gold_fe"])) for sc, s in zip(scores, flat, strict=True)
             if s["gold_fe"] is not None]
    metrics = step_metrics(pairs)
    # threshold-free: how often an erroneous step (the gold first error) scores below a correct one
    # (the steps before it), over all pairs; 0.5 = no ranking at all
    good = [v for sc, ref in pairs for v, y in zip(sc, ref, strict=True) if v is not None and y == 1.0]
    bad = [sc[ref.index(0.0)] for sc, ref in pairs if 0.0 in ref and sc[ref.index(0.0)] is not None]
    auc = _auc(good, bad)
    i, picks = 0, []
    for sols in problems.values():
        mins = [min((v for v in sc if v is not None), default=0.0) for sc in scores[i : i + len(sols)]]
        i += len(sols)
        best = max(range(len(sols)), key=lambda k: (mins[k], -k))  # ties: the lowest sample index
        picks.append(sols[best]["right"])
    return {"f1": metrics.processbench_f1, "step_acc": metrics.step_accuracy, "auc": auc,
            "best_of_n": sum(picks) / len(picks)}


def _auc(good: list[float], bad: list[float]) -> float | None:
    """P(a correct step scores above an erroneous one), ties counting half (Mann-Whitney)."""
    if not good or not bad:
        return None
    ranked = sorted([(v, 1) for v in good] + [(v, 0) for v in bad])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(1 for _, g in ranked[i:j] if g) * (i + j + 1) / 2
        i = j
    return (rank_sum - len(good) * (len(good) + 1) / 2) / (len(good) * len(bad))


def baselines(problems: dict[str, list[dict]]) -> dict[str, float]:
    majority, random_pick, oracle = [], [], []
    for sols in problems.values():
        answers = Counter(s["answer"] for s in sols if s["answer"] is not None)
        if answers:
            top = max(answers.values())
            # ties between answers: the one the lowest sample index gave
            winner = next(s["answer"] for s in sols if s["answer"] is not None and answers[s["answer"]] == top)
            majority.append(any(s["right"] for s in sols if s["answer"] == winner))
        else:
            majority.append(False)
        random_pick.append(sum(s["right"] for s in sols) / len(sols))
        oracle.append(any(s["right"] for s in sols))
    n = len(problems)
    return {"majority vote": sum(majority) / n, "random pick": sum(random_pick) / n, "any of 8 (oracle)": sum(oracle) / n}


def fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--eval-problems", type=int, default=60)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training and scoring")
    ap.add_argument("--work", default=None, help="keep runs, exports and PRMs here (default: a temporary dir)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        mc = {"method": "mc", "rollouts": args.rollouts, "max_tokens": 96, "batch_trajectories": 100}
        bs = {**mc, "method": "binary-search"}
        r1 = pipeline(work, "round1", run_config("round1", args.problems, TRAIN_SEED, args.samples, mc,
                                                  {"consistency": MC_CONSISTENCY}))
        rbs = pipeline(work, "bsearch", run_config("bsearch", args.problems, TRAIN_SEED, args.samples, bs, {}))
        ev = pipeline(work, "eval", run_config("eval", args.eval_problems, EVAL_SEED, 8, None, {}))
        problems = eval_set(ev, r1)

        sources = [  # (row, run, export label, use weights)
            ("gold (checker's exact truth)", r1, "gold", False),
            ("MC hard", r1, "hard", False),
            ("MC soft", r1, "soft", False),
            ("binary search", rbs, "hard", False),
            ("MC + consistency weights (round 1)", r1, "hard", True),
        ]
        prms = {}
        for i, (row, run_dir, label, weighted) in enumerate(sources):
            data = export_labels(run_dir, work / f"export-{i}", label)
            prms[row] = train_prm(data, work / f"prm-{i}", args, weighted)
        round1_prm = prms["MC + consistency weights (round 1)"][0]
        r2 = pipeline(work, "round2", run_config("round2", args.problems, TRAIN_SEED, args.samples, mc,
                                                  {"prm": {"model": round1_prm, "device": "cpu"},
                                                   "consistency": PRM_CONSISTENCY}))
        changed = connect(str(r2)).execute(
            f"SELECT count(*) FILTER (WHERE a.weight <> b.weight), count(*) FROM steps a "
            f"JOIN read_parquet('{r1}/steps/*.parquet') b USING (step_id)").fetchone()
        print(f"[bench] round 2 changed {changed[0]} of {changed[1]} step weights", flush=True)
        data = export_labels(r2, work / "export-r2", "hard")
        prms["MC + round-1 PRM weights (round 2)"] = train_prm(data, work / "prm-r2", args, True)

        results = {row: evaluate(path, problems) for row, (path, _) in prms.items()}
        base = baselines(problems)
    n_sol = sum(len(s) for s in problems.values())
    lines = [
        f"PRMs trained on {args.problems} arith problems x {args.samples} samples (generator seed {TRAIN_SEED}), "
        f"base builtin:arith-tiny, {args.epochs} epochs, lr {args.lr}, batch 16, seed 0; evaluated on "
        f"{len(problems)} held-out problems x 8 samples ({n_sol} solutions, seed {EVAL_SEED}). "
        f"{platform.machine()}, {os.cpu_count()} cores; whole bench {time.monotonic() - started:.0f} s.",
        "",
        "| labels | ProcessBench F1 | step accuracy | step AUC | best-of-8 accuracy | train s |",
        "|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        lines.append(f"| {row} | {fmt(r['f1'])} | {fmt(r['step_acc'])} | {fmt(r['auc'])} | {fmt(r['best_of_n'])} "
                     f"| {prms[row][1]:.0f} |")
    for row, v in base.items():
        lines.append(f"| {row} | | | | {fmt(v)} | |")
    gold_f1 = results["gold (checker's exact truth)"]["f1"]
    pseudo = {k: v for k, v in results.items() if not k.startswith("gold")}
    best_row = max(pseudo, key=lambda k: pseudo[k]["f1"] or 0.0)
    best = pseudo[best_row]
    ratio = (best["f1"] or 0.0) / gold_f1 if gold_f1 else None
    lines += [
        "",
        f"Best pseudo-label PRM by F1: {best_row}, {fmt(ratio)}x the gold PRM's F1 (goal >= 0.9); its best-of-8 "
        f"{fmt(best['best_of_n'])} vs majority vote {fmt(base['majority vote'])} (goal: above).",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
