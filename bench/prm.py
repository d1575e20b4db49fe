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

does everything on CPU and writes bench/results/prm.md. The two halves also run apart, so training
and evaluation can move to a machine without vLLM, Beam or DuckDB (a GPU box, see bench/gpu.py):

    python bench/prm.py --prepare DIR     # sampling, labeling, the five exports and the eval set
    python bench/prm.py --from DIR --device cuda --results PATH   # train + evaluate from DIR only

A prepared DIR holds ``prepared.json`` (sizes, seeds, the sources), one JSONL export directory per
label source and ``eval.json`` (the held-out solutions). Round 2 needs a pipeline run that scores
steps with the round-1 PRM, so it only runs in the full CPU bench.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prmflow.domains.arith import PROMPT_TEMPLATE
from prmflow.prm.config import PRMTrainConfig, parse_train_config
from prmflow.prm.metrics import step_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "prm.md"
TRAIN_SEED, EVAL_SEED = 1, 7  # generator seeds: the demo's family for training, another for evaluation
BASE_MODEL = "builtin:arith-tiny"
BATCH_SIZE, TRAIN_SEED_PRM, MAX_LENGTH = 16, 0, 256  # the trainer's batch, seed and sequence cap for every PRM
EPOCHS, LR = 8, 1e-3  # the defaults of --epochs and --lr
SAMPLER = {"backend": "vllm", "model": BASE_MODEL, "dtype": "float32", "max_model_len": 256,
           "kv_cache_memory_bytes": 268435456, "block_size": 32, "enforce_eager": True}
MC_CONSISTENCY = {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"}
PRM_CONSISTENCY = {"mode": "hard", "score": "prm_score", "threshold": 0.5, "ties": "negative"}
PREPARED_JSON, EVAL_JSON = "prepared.json", "eval.json"


@dataclass(frozen=True)
class Source:
    """One label source: its table row, the pipeline run it is exported from, the export's label, whether
    the trainer reads the consistency weights, and its export directory's name in a prepared DIR."""

    row: str
    run: str
    label: str
    weighted: bool
    slug: str


SOURCES = (
    Source("gold (checker's exact truth)", "round1", "gold", False, "gold"),
    Source("MC hard", "round1", "hard", False, "mc-hard"),
    Source("MC soft", "round1", "soft", False, "mc-soft"),
    Source("binary search", "bsearch", "hard", False, "binary-search"),
    Source("MC + consistency weights (round 1)", "round1", "hard", True, "mc-consistency"),
)
GOLD = SOURCES[0].row
ROUND1 = SOURCES[-1].row
ROUND2 = "MC + round-1 PRM weights (round 2)"


@dataclass(frozen=True)
class Trained:
    """A trained PRM and what its training cost."""

    path: str
    seconds: float
    """The whole ``train()`` call: loading, encoding, optimiser steps, validation, saving."""
    steps: int
    step_seconds: float
    """Inside the optimiser steps only."""

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.step_seconds if self.step_seconds else 0.0


@dataclass(frozen=True)
class Prepared:
    """A prepared DIR, read back: its metadata, the held-out evaluation set and one export per source."""

    path: Path
    meta: dict
    problems: dict[str, list[dict]]

    def export(self, source: Source) -> Path:
        return self.path / source.slug


# --------------------------------------------------------------------------------------------- CPU side:
# pipelines, exports, the eval set. Beam, vLLM and DuckDB are imported inside these functions only.

def _cpu_engine_env() -> None:
    """The in-process vLLM engine on CPU: no engine subprocess, one OpenMP thread (set before torch loads)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
    import yaml

    from prmflow.pipelines.label import run

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
    """A ``prmflow export --format prmflow`` of ``label`` as JSONL (readable without pyarrow's parquet)."""
    from prmflow.export.api import export
    from prmflow.export.config import ExportConfig

    export(str(run_dir), str(out), ExportConfig(format="prmflow", label=label, val_fraction=0.05, seed=0,
                                                 file_format="jsonl", overwrite=True))
    return out


def eval_set(eval_dir: Path, train_dir: Path) -> dict[str, list[dict]]:
    """Held-out problem id -> its sampled solutions (prompt, steps, answer, outcome, gold first error)."""
    from prmflow.analysis import connect

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


def prepare(work: Path, out: Path, args) -> dict[str, Path]:
    """Run the sampling/labeling pipelines in ``work`` and write a prepared DIR to ``out``: one JSONL export
    per source, ``eval.json`` and ``prepared.json``. Returns the pipeline run directories by name."""
    if out.is_dir() and any(out.iterdir()) and not (out / PREPARED_JSON).is_file():
        sys.exit(f"{out} is not empty and not a prepared DIR; give a new or a prepared directory")
    _cpu_engine_env()
    started = time.monotonic()
    mc = {"method": "mc", "rollouts": args.rollouts, "max_tokens": 96, "batch_trajectories": 100}
    bs = {**mc, "method": "binary-search"}
    runs = {
        "round1": pipeline(work, "round1", run_config("round1", args.problems, TRAIN_SEED, args.samples, mc,
                                                       {"consistency": MC_CONSISTENCY})),
        "bsearch": pipeline(work, "bsearch", run_config("bsearch", args.problems, TRAIN_SEED, args.samples, bs, {})),
        "eval": pipeline(work, "eval", run_config("eval", args.eval_problems, EVAL_SEED, 8, None, {})),
    }
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for source in SOURCES:
        export_labels(runs[source.run], out / source.slug, source.label)
    problems = eval_set(runs["eval"], runs["round1"])
    (out / EVAL_JSON).write_text(json.dumps(problems) + "\n", encoding="utf-8")
    meta = {
        "problems": args.problems, "samples": args.samples, "rollouts": args.rollouts,
        "eval_problems": args.eval_problems, "train_seed": TRAIN_SEED, "eval_seed": EVAL_SEED,
        "sources": [dataclasses.asdict(source) for source in SOURCES],
        "prepare_seconds": round(time.monotonic() - started, 1),
        "prepared_on": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    (out / PREPARED_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"[bench] prepared {out}: {size / 2**20:.1f} MiB", flush=True)
    return runs


# ------------------------------------------------------------------------------------ training side:
# torch and transformers only (via prmflow.prm), so it runs where vLLM, Beam and DuckDB are absent.

def load_prepared(path: str | Path) -> Prepared:
    path = Path(path)
    meta = json.loads((path / PREPARED_JSON).read_text(encoding="utf-8"))
    problems = json.loads((path / EVAL_JSON).read_text(encoding="utf-8"))
    missing = [s.slug for s in SOURCES if not (path / s.slug).is_dir()]
    if missing:
        sys.exit(f"{path} lacks the exports {missing}; make it with bench/prm.py --prepare")
    return Prepared(path, meta, problems)


def train_config(data: Path, out: Path, *, use_weights: bool = False, epochs: int = EPOCHS, lr: float = LR,
                 device: str = "cpu", base: str = BASE_MODEL) -> PRMTrainConfig:
    """The bench's trainer config: its fixed batch, sequence cap, seed and the arith prompt template."""
    return parse_train_config({
        "data": str(data), "output": str(out), "base_model": base, "use_weights": use_weights,
        "epochs": epochs, "lr": lr, "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH, "seed": TRAIN_SEED_PRM,
        "device": device, "prompt_template": PROMPT_TEMPLATE, "overwrite": True,
    })


def train_prm(data: Path, out: Path, *, threads: int | None = None, **kwargs) -> Trained:
    """One PRM trained with :func:`train_config` (keyword args go there); ``threads``: torch's CPU threads.

    Where the full bench's in-process vLLM engine ran first, ``torch.set_num_threads`` is vLLM's no-op
    (its CPU worker replaces it), so training keeps the engine's one thread; ``device_name`` says so."""
    import torch

    from prmflow.prm.train import train

    if threads:
        torch.set_num_threads(threads)  # OMP_NUM_THREADS=1 is for the in-process engine, not training
    config = train_config(data, out, **kwargs)
    result = train(config, progress=False)
    print(f"[bench] trained {out.name} on {config.device} in {result.seconds:.1f} s ({result.steps} steps in "
          f"{result.step_seconds:.1f} s): {result.history[-1]}", flush=True)
    return Trained(result.output, result.seconds, result.steps, result.step_seconds)


def train_sources(prepared: Prepared, work: Path, sources=SOURCES, **train_kwargs) -> dict[str, Trained]:
    """One PRM per source of a prepared DIR, trained into ``work/prm-<slug>``; keyword args go to train_prm."""
    return {s.row: train_prm(prepared.export(s), work / f"prm-{s.slug}", use_weights=s.weighted, **train_kwargs)
            for s in sources}


def gold_prefix(n: int, first_error: int) -> list[float]:
    return [1.0 if first_error < 0 or i < first_error else 0.0 for i in range(n)]


def evaluate(prm_dir: str, problems: dict[str, list[dict]], device: str = "cpu") -> dict:
    from prmflow.prm.scorer import PRMScorer

    scorer = PRMScorer(prm_dir, device=device, batch_size=32)
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


def device_name(device: str) -> str:
    """The device's name for a results line: the GPU's, or the CPU's architecture, cores and torch threads."""
    import torch

    from prmflow.prm.model import resolve_device

    if resolve_device(device) == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def results_table(results: dict[str, dict], trained: dict[str, Trained], base: dict[str, float]) -> list[str]:
    """The markdown table (one row per PRM, then the baselines) and the goals line."""
    lines = [
        "| labels | ProcessBench F1 | step accuracy | step AUC | best-of-8 accuracy | train s | steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        t = trained[row]
        lines.append(f"| {row} | {fmt(r['f1'])} | {fmt(r['step_acc'])} | {fmt(r['auc'])} | {fmt(r['best_of_n'])} "
                     f"| {t.seconds:.1f} | {t.steps_per_s:.1f} |")
    for row, v in base.items():
        lines.append(f"| {row} | | | | {fmt(v)} | | |")
    lines += ["", goals_line(results, base)]
    return lines


def goals_line(results: dict[str, dict], base: dict[str, float]) -> str:
    """Issue 12's goals: the best pseudo-label PRM's F1 vs gold's, and its best-of-8 vs majority vote."""
    gold_f1 = results[GOLD]["f1"] if GOLD in results else None
    pseudo = {k: v for k, v in results.items() if k != GOLD}
    if not pseudo:
        return "No pseudo-label PRM to compare."
    best_row = best_pseudo(results)
    best = pseudo[best_row]
    ratio = (best["f1"] or 0.0) / gold_f1 if gold_f1 else None
    return (f"Best pseudo-label PRM by F1: {best_row}, {fmt(ratio)}x the gold PRM's F1 (goal >= 0.9); its best-of-8 "
            f"{fmt(best['best_of_n'])} vs majority vote {fmt(base['majority vote'])} (goal: above).")


def best_pseudo(results: dict[str, dict]) -> str:
    """The row of the pseudo-label PRM with the highest ProcessBench F1."""
    pseudo = {k: v for k, v in results.items() if k != GOLD}
    return max(pseudo, key=lambda k: pseudo[k]["f1"] or 0.0)


def header(meta: dict, problems: dict[str, list[dict]], *, base: str, epochs: int, lr: float) -> str:
    n_sol = sum(len(s) for s in problems.values())
    subset = f" ({meta['subset']})" if "subset" in meta else ""
    return (f"PRMs trained on {meta['problems']} arith problems x {meta['samples']} samples{subset} (generator seed "
            f"{meta['train_seed']}), base {base}, {epochs} epochs, lr {lr}, batch {BATCH_SIZE}, seed {TRAIN_SEED_PRM}; "
            f"evaluated on {len(problems)} held-out problems x 8 samples ({n_sol} solutions, seed {meta['eval_seed']}).")


def write_results(path: Path, text: str) -> None:
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def run_from(args) -> int:
    """``--from DIR``: train and evaluate the five PRMs of a prepared DIR on ``--device``."""
    started = time.monotonic()
    prepared = load_prepared(args.from_dir)
    with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
        work = Path(args.work or tmp)
        trained = train_sources(prepared, work, epochs=args.epochs, lr=args.lr, device=args.device, base=args.base,
                                threads=args.threads)
        results = {row: evaluate(t.path, prepared.problems, args.device) for row, t in trained.items()}
    lines = [header(prepared.meta, prepared.problems, base=args.base, epochs=args.epochs, lr=args.lr)
             + f" From {prepared.path} on {device_name(args.device)}; {time.monotonic() - started:.0f} s "
             f"(round 2 needs the pipeline and is not run here).", ""]
    write_results(Path(args.results), "\n".join(lines + results_table(results, trained, baselines(prepared.problems))))
    return 0


def run_all(args) -> int:
    """The whole bench on this machine: prepare, train the five PRMs, round 2, evaluate."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = prepare(work, work / "prepared", args)
        prepared = load_prepared(work / "prepared")
        train = {"epochs": args.epochs, "lr": args.lr, "device": args.device, "base": args.base,
                 "threads": args.threads}
        trained = train_sources(prepared, work, **train)

        from prmflow.analysis import connect

        mc = {"method": "mc", "rollouts": args.rollouts, "max_tokens": 96, "batch_trajectories": 100}
        r1 = runs["round1"]
        r2 = pipeline(work, "round2", run_config("round2", args.problems, TRAIN_SEED, args.samples, mc,
                                                  {"prm": {"model": trained[ROUND1].path, "device": args.device},
                                                   "consistency": PRM_CONSISTENCY}))
        changed = connect(str(r2)).execute(
            f"SELECT count(*) FILTER (WHERE a.weight <> b.weight), count(*) FROM steps a "
            f"JOIN read_parquet('{r1}/steps/*.parquet') b USING (step_id)").fetchone()
        print(f"[bench] round 2 changed {changed[0]} of {changed[1]} step weights", flush=True)
        data = export_labels(r2, work / "export-r2", "hard")
        trained[ROUND2] = train_prm(data, work / "prm-r2", use_weights=True, **train)

        results = {row: evaluate(t.path, prepared.problems, args.device) for row, t in trained.items()}
    lines = [header(prepared.meta, prepared.problems, base=args.base, epochs=args.epochs, lr=args.lr)
             + f" {device_name(args.device)}; whole bench {time.monotonic() - started:.0f} s.", ""]
    write_results(Path(args.results or RESULTS),
                  "\n".join(lines + results_table(results, trained, baselines(prepared.problems))))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    phase = ap.add_mutually_exclusive_group()
    phase.add_argument("--prepare", metavar="DIR", help="only run the pipelines and write a prepared DIR")
    phase.add_argument("--from", dest="from_dir", metavar="DIR", help="only train + evaluate from a prepared DIR")
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--eval-problems", type=int, default=60)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="for training and scoring")
    ap.add_argument("--base", default=BASE_MODEL, help="the PRMs' base model (builtin:NAME or a local directory)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training and scoring")
    ap.add_argument("--results", default=None,
                    help="where the table goes (default bench/results/prm.md for the full run; required with --from)")
    ap.add_argument("--work", default=None, help="keep runs, exports and PRMs here (default: a temporary dir)")
    args = ap.parse_args(argv)
    if args.prepare:
        with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
            work = Path(args.work or tmp)
            work.mkdir(parents=True, exist_ok=True)
            prepare(work, Path(args.prepare), args)
        return 0
    if args.from_dir:
        if not args.results:
            ap.error("--from needs --results PATH (bench/results/prm.md is the full CPU run's)")
        return run_from(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
