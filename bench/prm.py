"""Does a PRM trained on prmflow's pseudo-labels help? PRMs of one size and budget, one per label source.

On the embedded arith domain (whose checker knows every step's truth): sample 4 solutions for each of
``--problems`` training problems with ``builtin:arith-tiny``, label them by exhaustive Monte-Carlo and by
binary search, export (15% of the problems as a problem-disjoint validation split), and train one PRM
per label source with ``prmflow train-prm`` (base ``builtin:arith-tiny``, ``--head`` (default logprob),
the same epochs, batch, learning rates and seed for all):

* gold: the checker's exact step truth (the upper bound);
* MC hard (value > 0), MC soft (the value itself), binary search (OmegaPRM, hard);
* MC + consistency: MC hard labels weighted by MetaStone-S1 consistency with the outcome (round 1);
* round 2 (``--round2``): the same MC labels, weighted by agreement of the round-1 PRM with the outcome.

Two rows need no training: the regex verifier (recomputes each ``a op b = c``) and the policy-likelihood
scorer (a step's lowest token probability under arith-tiny); one is a check of the evaluation code: the
gold labels themselves as scores (F1 1.0, best-of-8 = any-of-8).

Every scorer is evaluated on ``--eval-problems`` held-out problems (another generator seed; any prompt
also in the training set is dropped) x 8 solutions from two samplers:

* the policy: arith-tiny's own samples. Its errors are low-probability sampling slips, so the untrained
  likelihood already ranks them; a PRM built on the same base can win by reading that likelihood;
* a perturbation sampler: the problem's reference solution with one injected error in 60% of the
  solutions, of three kinds in equal parts: a wrong operand (another number of the problem or an
  earlier result, with the arithmetic then done right), a wrong operator (done right), or an
  arithmetic slip (the result off by a small amount); later steps carry the wrong value forward
  correctly. Two of the three kinds are correct arithmetic on the wrong numbers: tokens the policy
  finds likely, so the likelihood shortcut (and the regex verifier) cannot see them; only a PRM that
  learned which numbers a step should combine can.

Metrics, AUC first: step AUC (threshold-free: P(a correct step scores above a first-error step), over
the steps up to each first error); ProcessBench F1 (first-error accuracy on erroneous and on correct
solutions, harmonic mean) at the threshold chosen on validation (a trained PRM's own, from its label
source's validation split; the no-training rows' on the gold validation split); best-of-8 (highest
lowest-step-score) and the PRM-weighted vote (answers weighted by their solutions' lowest step score),
each with a paired bootstrap 95% interval of its difference to majority vote over problems. Learning
curves: gold and MC hard trained on ``--curve`` fractions of the training problems. Nothing is tuned on
the evaluation problems.

    python bench/prm.py [--problems 300] [--eval-problems 400] [--epochs 3]

does everything on CPU and writes bench/results/prm.md. The two halves also run apart, so training
and evaluation can move to a machine without vLLM, Beam or DuckDB (a GPU box, see bench/gpu.py):

    python bench/prm.py --prepare DIR     # sampling, labeling, the five exports and both eval sets
    python bench/prm.py --from DIR --device cuda --results PATH   # train + evaluate from DIR only

A prepared DIR holds ``prepared.json`` (sizes, seeds, the sources), one JSONL export directory per
label source, ``eval.json`` (the policy's held-out solutions) and ``other.json`` (the perturbation
sampler's). Round 2 needs a pipeline run that scores steps with the round-1 PRM, so it only runs in
the full CPU bench.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prmflow.domains.arith import PROMPT_TEMPLATE
from prmflow.ids import content_id
from prmflow.prm import bon
from prmflow.prm.config import PRMTrainConfig, parse_train_config
from prmflow.prm.encoding import StepFormat
from prmflow.prm.metrics import best_threshold, step_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "prm.md"
TRAIN_SEED, EVAL_SEED = 1, 7  # generator seeds: the demo's family for training, another for evaluation
BASE_MODEL = "builtin:arith-tiny"
BATCH_SIZE, TRAIN_SEED_PRM, MAX_LENGTH = 16, 0, 256  # the trainer's batch, seed and sequence cap for every PRM
EPOCHS, LR, HEAD_LR, HEAD = 3, 1e-5, 3e-3, "logprob"  # the defaults of --epochs, --lr, --head-lr, --head
VAL_FRACTION = 0.15  # of the training problems, the exports' problem-disjoint validation split
SAMPLER = {"backend": "vllm", "model": BASE_MODEL, "dtype": "float32", "max_model_len": 256,
           "kv_cache_memory_bytes": 268435456, "block_size": 32, "enforce_eager": True}
MC_CONSISTENCY = {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"}
PRM_CONSISTENCY = {"mode": "hard", "score": "prm_score", "threshold": 0.5, "ties": "negative"}
PREPARED_JSON, EVAL_JSON, OTHER_JSON = "prepared.json", "eval.json", "other.json"
PERTURB_CLEAN, PERTURB_KINDS = 0.4, ("operand", "operator", "slip")


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
ORACLE = "gold labels as scores (check)"
REGEX = "regex verifier (no training)"
LIKELIHOOD = "policy likelihood (no training)"


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
    """A prepared DIR, read back: its metadata, the two held-out evaluation sets and one export per source."""

    path: Path
    meta: dict
    problems: dict[str, list[dict]]
    """The policy's solutions."""
    other: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
    """The perturbation sampler's solutions (absent in DIRs prepared before it)."""

    def export(self, source: Source) -> Path:
        return self.path / source.slug


# --------------------------------------------------------------------------------------------- CPU side:
# pipelines, exports, the eval sets. Beam, vLLM and DuckDB are imported inside these functions only.

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

    export(str(run_dir), str(out), ExportConfig(format="prmflow", label=label, val_fraction=VAL_FRACTION, seed=0,
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


def perturbed_solution(problem, rng: random.Random) -> tuple[list[str], str | None]:
    """One solution of the perturbation sampler (see the module docstring) and the kind of its error.
    An error whose carried-forward value makes a later division inexact is drawn again (arith's
    solutions divide exactly); after 20 such draws it goes into the last step (nothing after it to
    divide), and if even that fails the solution is the clean one."""
    kind = None if rng.random() < PERTURB_CLEAN else rng.choice(PERTURB_KINDS)
    last = len(problem.program) - 1
    for attempt in range(21):
        try:
            return _perturb(problem, rng, kind, rng.randrange(len(problem.program)) if attempt < 20 else last)
        except (ValueError, ZeroDivisionError):
            continue
    return _perturb(problem, rng, None, 0)


def _perturb(problem, rng: random.Random, kind: str | None, at: int) -> tuple[list[str], str | None]:
    """The solution and the kind of error it got: an operand or operator change that has no exact
    integer result becomes a slip (and is reported as one)."""
    from prmflow.domains.arith import ANSWER_TEMPLATE, apply_op

    program = problem.program
    values: list[int] = []
    lines = []
    for j, step in enumerate(program):
        left = problem.quantities[step.left.index] if step.left.source == "quantity" else values[step.left.index]
        right = problem.quantities[step.right.index] if step.right.source == "quantity" else values[step.right.index]
        op = step.op
        value = None
        if j == at and kind == "operand":
            pool = sorted({*problem.quantities, *values} - {left, right})
            for _ in range(8):
                if not pool:
                    break
                new = rng.choice(pool)
                a, b = (new, right) if rng.random() < 0.5 else (left, new)
                try:
                    v = apply_op(op, a, b)
                except (ValueError, ZeroDivisionError):
                    continue
                left, right, value = a, b, v
                break
        elif j == at and kind == "operator":
            for new in rng.sample([o for o in ("+", "-", "*", "/") if o != op], 3):
                try:
                    value = apply_op(new, left, right)
                except (ValueError, ZeroDivisionError):
                    continue
                op = new
                break
        if value is None:
            value = apply_op(op, left, right)
            if j == at and kind is not None:  # a slip, or the fallback of an operand/operator error
                value += rng.choice((-10, -2, -1, 1, 2, 10))
                kind = "slip"
        values.append(value)
        lines.append(f"{left} {op} {right} = {value}")
    return [*lines, ANSWER_TEMPLATE.format(answer=values[-1])], kind


def other_set(problems: dict[str, list[dict]], count: int, seed: int, samples: int = 8) -> dict[str, list[dict]]:
    """The perturbation sampler's solutions for the evaluation problems (same ids), with the checker's labels."""
    from prmflow.domains.arith import check_steps, generate_problems

    prompts = {sols[0]["prompt"]: pid for pid, sols in problems.items()}
    out: dict[str, list[dict]] = {}
    for problem in generate_problems(count, seed):
        pid = prompts.get(problem.prompt)
        if pid is None:
            continue
        rng = random.Random(int(content_id("perturb", pid), 16))
        sols = []
        for _ in range(samples):
            steps, kind = perturbed_solution(problem, rng)
            result = check_steps(problem, steps)
            sols.append({"prompt": problem.prompt, "steps": steps, "answer": str(result.final_answer),
                         "right": result.final_answer == problem.answer, "gold_fe": result.first_error_index,
                         "kind": kind})
        out[pid] = sols
    return out


def write_bon(problems: dict[str, list[dict]], path: Path) -> Path:
    """An eval set as a ``prmflow eval-prm --bon`` candidate file (gzipped JSONL, one solution a line;
    fixed gzip mtime, so the same set gives the same bytes)."""
    import gzip

    lines = "".join(json.dumps({"problem_id": pid, "prompt": s["prompt"], "steps": s["steps"], "answer": s["answer"],
                                "right": s["right"], "first_error": s["gold_fe"]}) + "\n"
                    for pid, sols in problems.items() for s in sols)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(lines.encode("utf-8"))
    return path


def prepare(work: Path, out: Path, args) -> dict[str, Path]:
    """Run the sampling/labeling pipelines in ``work`` and write a prepared DIR to ``out``: one JSONL export
    per source, ``eval.json``, ``other.json`` and ``prepared.json``. Returns the pipeline run directories."""
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
    other = other_set(problems, args.eval_problems, EVAL_SEED)
    (out / OTHER_JSON).write_text(json.dumps(other) + "\n", encoding="utf-8")
    write_bon(problems, out / "bon-policy.jsonl.gz")
    write_bon(other, out / "bon-other.jsonl.gz")
    meta = {
        "problems": args.problems, "samples": args.samples, "rollouts": args.rollouts,
        "eval_problems": args.eval_problems, "train_seed": TRAIN_SEED, "eval_seed": EVAL_SEED,
        "val_fraction": VAL_FRACTION, "sources": [dataclasses.asdict(source) for source in SOURCES],
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
    other = json.loads((path / OTHER_JSON).read_text(encoding="utf-8")) if (path / OTHER_JSON).is_file() else {}
    missing = [s.slug for s in SOURCES if not (path / s.slug).is_dir()]
    if missing:
        sys.exit(f"{path} lacks the exports {missing}; make it with bench/prm.py --prepare")
    return Prepared(path, meta, problems, other)


def train_config(data: Path, out: Path, *, use_weights: bool = False, epochs: int = EPOCHS, lr: float = LR,
                 head_lr: float = HEAD_LR, head: str = HEAD, device: str = "cpu", base: str = BASE_MODEL
                 ) -> PRMTrainConfig:
    """The bench's trainer config: its fixed batch, sequence cap, seed and the arith prompt template."""
    return parse_train_config({
        "data": str(data), "output": str(out), "base_model": base, "use_weights": use_weights, "head": head,
        "epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH,
        "seed": TRAIN_SEED_PRM, "device": device, "prompt_template": PROMPT_TEMPLATE, "overwrite": True,
        "resume": False,
    })


TRAINED_JSON = "bench-trained.json"


def train_prm(data: Path, out: Path, *, threads: int | None = None, reuse: bool = False, **kwargs) -> Trained:
    """One PRM trained with :func:`train_config` (keyword args go there); ``threads``: torch's CPU threads.
    ``reuse``: a PRM this bench already trained into ``out`` with the same config is taken as it is (so
    several bench processes can train apart into one ``--work`` and one of them gather the table).

    Where the full bench's in-process vLLM engine ran first, ``torch.set_num_threads`` is vLLM's no-op
    (its CPU worker replaces it), so training keeps the engine's one thread; ``device_name`` says so."""
    import torch

    from prmflow.prm.train import config_digest, train

    if threads:
        torch.set_num_threads(threads)  # OMP_NUM_THREADS=1 is for the in-process engine, not training
    config = train_config(data, out, **kwargs)
    record = out / TRAINED_JSON
    if reuse and record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved.get("config_digest") == config_digest(config):
            print(f"[bench] reusing {out}", flush=True)
            return Trained(**saved["trained"])
    result = train(config, progress=False)
    print(f"[bench] trained {out.name} on {config.device} in {result.seconds:.1f} s ({result.steps} steps in "
          f"{result.step_seconds:.1f} s): validation {result.validation}", flush=True)
    trained = Trained(result.output, result.seconds, result.steps, result.step_seconds)
    record.write_text(json.dumps({"config_digest": config_digest(config), "trained": dataclasses.asdict(trained)}),
                      encoding="utf-8")
    return trained


def train_sources(prepared: Prepared, work: Path, sources=SOURCES, **train_kwargs) -> dict[str, Trained]:
    """One PRM per source of a prepared DIR, trained into ``work/prm-<slug>``; keyword args go to train_prm."""
    return {s.row: train_prm(prepared.export(s), work / f"prm-{s.slug}", use_weights=s.weighted, **train_kwargs)
            for s in sources}


def subset_export(src: Path, dst: Path, fraction: float) -> Path:
    """A copy of an export whose training split keeps ``fraction`` of its problems (a seeded hash of the
    problem id, so a smaller fraction's problems are a subset of a larger one's); validation unchanged."""
    from prmflow.prm.data import held_out

    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "validation.jsonl", dst / "validation.jsonl")
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [ln for ln in lines if held_out(json.loads(ln)["problem_id"], fraction, 1)]
    (dst / "train.jsonl").write_text("".join(keep), encoding="utf-8")
    return dst


def gold_prefix(n: int, first_error: int) -> list[float]:
    return [1.0 if first_error < 0 or i < first_error else 0.0 for i in range(n)]


Scores = list[list[float | None]]


def flat(problems: dict[str, list[dict]]) -> list[dict]:
    return [s for sols in problems.values() for s in sols]


def score_set(scorer: Callable[[list[tuple[str, list[str]]]], Scores], problems: dict[str, list[dict]]) -> Scores:
    return scorer([(s["prompt"], s["steps"]) for s in flat(problems)])


def evaluate_scores(scores: Scores, problems: dict[str, list[dict]], threshold: float = 0.5) -> dict:
    """Step AUC, ProcessBench F1 at ``threshold``, best-of-8 and weighted vote (and their per-problem hits)."""
    sols = flat(problems)
    pairs = [(sc, gold_prefix(len(s["steps"]), s["gold_fe"])) for sc, s in zip(scores, sols, strict=True)
             if s["gold_fe"] is not None]
    metrics = step_metrics(pairs, threshold)
    i, cands = 0, []
    for group in problems.values():
        cands.append([bon.Candidate(s["answer"], s["right"], sc) for s, sc in zip(group, scores[i : i + len(group)],
                                                                                  strict=True)])
        i += len(group)
    bo8, vote = bon.per_problem(cands, bon.best_of_n), bon.per_problem(cands, bon.weighted_vote)
    return {"f1": metrics.processbench_f1, "step_acc": metrics.step_accuracy, "auc": metrics.step_auc,
            "threshold": threshold, "best_of_n": bon.accuracy(bo8), "weighted_vote": bon.accuracy(vote),
            "per_problem": {"best_of_n": bo8, "weighted_vote": vote}}


def evaluate(prm_dir: str, problems: dict[str, list[dict]], device: str = "cpu", cache: str | None = None) -> dict:
    """A saved PRM on one eval set, at its own (validation-chosen) threshold. ``cache``: keep the scores
    in ``prm_dir/scores-<cache>.json`` (keyed by the weights' sha256) and read them back next time."""
    from prmflow.prm.config import read_prm_json

    meta = read_prm_json(prm_dir, "PRM")
    path = Path(prm_dir) / f"scores-{cache}.json" if cache else None
    if path is not None and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved["weights_sha256"] == meta["weights_sha256"] and len(saved["scores"]) == len(flat(problems)):
            return evaluate_scores(saved["scores"], problems, float(meta.get("threshold", 0.5)))
    from prmflow.prm.scorer import PRMScorer

    scorer = PRMScorer(prm_dir, device=device, batch_size=32)
    scores = score_set(scorer.score_many, problems)
    if path is not None:
        path.write_text(json.dumps({"weights_sha256": meta["weights_sha256"], "scores": scores}), encoding="utf-8")
    return evaluate_scores(scores, problems, scorer.threshold)


def candidates(problems: dict[str, list[dict]]) -> list[list[bon.Candidate]]:
    return [[bon.Candidate(s["answer"], s["right"], []) for s in sols] for sols in problems.values()]


def baselines(problems: dict[str, list[dict]]) -> dict[str, float]:
    cands = candidates(problems)
    return {"majority vote": bon.accuracy(bon.per_problem(cands, bon.majority_vote)),
            "random pick": bon.accuracy(bon.per_problem(cands, bon.random_pick)),
            "any of 8 (oracle)": bon.accuracy(bon.per_problem(cands, bon.any_of_n))}


def gold_scores(problems: dict[str, list[dict]]) -> Scores:
    """The checker's labels as scores (1 before the first error, 0 from it): the evaluation code's check."""
    return [gold_prefix(len(s["steps"]), s["gold_fe"] if s["gold_fe"] is not None else -1) for s in flat(problems)]


def validation_pairs(export_dir: Path) -> list[tuple[list[str], str, list[float]]]:
    rows = [json.loads(ln) for ln in (export_dir / "validation.jsonl").read_text(encoding="utf-8").splitlines() if ln]
    return [(r["prompt"], r["steps"], r["labels"]) for r in rows]


def untrained_rows(prepared: Prepared, device: str, cache: Path | None = None) -> dict[str, dict[str, dict]]:
    """The no-training rows and the oracle check, on both eval sets; thresholds chosen on the gold
    export's validation split. ``cache``: a directory keeping the likelihood scores."""
    from prmflow.prm.baselines import LikelihoodScorer, regex_verifier

    val = validation_pairs(prepared.export(SOURCES[0]))
    scorer: list = []

    def likelihood(examples):
        key = content_id("likelihood", BASE_MODEL, [[p, list(s)] for p, s in examples])
        path = cache / f"likelihood-{key}.json" if cache else None
        if path is not None and path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        if not scorer:
            scorer.append(LikelihoodScorer(BASE_MODEL, StepFormat(prompt_template=PROMPT_TEMPLATE), device=device,
                                           batch_size=32, max_length=MAX_LENGTH))
        scores = scorer[0].score_many(examples)
        if path is not None:
            path.write_text(json.dumps(scores), encoding="utf-8")
        return scores

    def regex(examples):
        return [regex_verifier(steps) for _, steps in examples]

    out: dict[str, dict[str, dict]] = {}
    for row, fn in ((REGEX, regex), (LIKELIHOOD, likelihood)):
        val_scores = fn([(p, s) for p, s, _ in val])
        threshold = best_threshold(list(zip(val_scores, (y for _, _, y in val), strict=True)))
        out[row] = {name: evaluate_scores(score_set(fn, probs), probs, threshold)
                    for name, probs in eval_sets(prepared).items()}
    out[ORACLE] = {name: evaluate_scores(gold_scores(probs), probs) for name, probs in eval_sets(prepared).items()}
    return out


def eval_sets(prepared: Prepared) -> dict[str, dict[str, list[dict]]]:
    sets = {"policy": prepared.problems}
    if prepared.other:
        sets["other"] = prepared.other
    return sets


def fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def device_name(device: str) -> str:
    """The device's name for a results line: the GPU's, or the CPU's architecture, cores and torch threads."""
    import torch

    from prmflow.prm.model import resolve_device

    if resolve_device(device) == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _delta(r: dict, majority: list[float], key: str, seed: int = 0) -> str:
    mean, lo, hi = bon.paired_bootstrap(r["per_problem"][key], majority, seed=seed)
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def set_table(results: dict[str, dict], problems: dict[str, list[dict]], trained: dict[str, Trained] | None = None
              ) -> list[str]:
    """One eval set's markdown table: a row per scorer, then majority / random / any-of-8."""
    majority = bon.per_problem(candidates(problems), bon.majority_vote)
    lines = [
        "| scorer | step AUC | ProcessBench F1 (threshold) | best-of-8 | vs majority [95% CI] | weighted vote "
        "| vs majority [95% CI] | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        t = (trained or {}).get(row)
        lines.append(f"| {row} | {fmt(r['auc'])} | {fmt(r['f1'])} ({r['threshold']:.3f}) | {fmt(r['best_of_n'])} "
                     f"| {_delta(r, majority, 'best_of_n')} | {fmt(r['weighted_vote'])} "
                     f"| {_delta(r, majority, 'weighted_vote')} | {f'{t.seconds:.0f}' if t else ''} |")
    for row, v in baselines(problems).items():
        lines.append(f"| {row} | | | {fmt(v)} | | | | |")
    return lines


def results_table(results: dict[str, dict], trained: dict[str, Trained], base: dict[str, float]) -> list[str]:
    """The policy set's table of trained PRMs (bench/gpu.py's view: one eval set, no intervals)."""
    lines = [
        "| labels | step AUC | ProcessBench F1 | step accuracy | best-of-8 | weighted vote | train s | steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        t = trained[row]
        lines.append(f"| {row} | {fmt(r['auc'])} | {fmt(r['f1'])} | {fmt(r['step_acc'])} | {fmt(r['best_of_n'])} "
                     f"| {fmt(r.get('weighted_vote'))} | {t.seconds:.1f} | {t.steps_per_s:.1f} |")
    for row, v in base.items():
        lines.append(f"| {row} | | | | {fmt(v)} | | | |")
    lines += ["", goals_line(results, base)]
    return lines


def goals_line(results: dict[str, dict], base: dict[str, float]) -> str:
    """Each pseudo-label PRM's AUC and F1 as a multiple of gold's (goal >= 0.9)."""
    gold = results.get(GOLD)
    pseudo = {k: v for k, v in results.items() if k != GOLD}
    if gold is None or not pseudo:
        return "No gold and pseudo-label PRMs to compare."
    parts = []
    for row, r in pseudo.items():
        auc = (r["auc"] or 0.0) / gold["auc"] if gold["auc"] else None
        f1 = (r["f1"] or 0.0) / gold["f1"] if gold["f1"] else None
        parts.append(f"{row} {fmt(auc)}x / {fmt(f1)}x")
    return "Pseudo-label PRMs, step AUC / F1 as a multiple of the gold PRM's (goal >= 0.9 each): " + "; ".join(parts) + "."


def best_pseudo(results: dict[str, dict]) -> str:
    """The row of the pseudo-label PRM with the highest step AUC."""
    pseudo = {k: v for k, v in results.items() if k != GOLD}
    return max(pseudo, key=lambda k: pseudo[k]["auc"] or 0.0)


def header(meta: dict, problems: dict[str, list[dict]], *, base: str, epochs: int, lr: float,
           head: str = HEAD, head_lr: float = HEAD_LR) -> str:
    n_sol = sum(len(s) for s in problems.values())
    subset = f" ({meta['subset']})" if "subset" in meta else ""
    return (f"PRMs trained on {meta['problems']} arith problems x {meta['samples']} samples{subset} (generator seed "
            f"{meta['train_seed']}; {meta.get('val_fraction', 0.05):.0%} of them the validation split), base {base}, "
            f"head {head}, {epochs} epochs, body lr {lr}, head lr {head_lr}, batch {BATCH_SIZE}, seed "
            f"{TRAIN_SEED_PRM}; evaluated on {len(problems)} held-out problems x 8 solutions ({n_sol}, seed "
            f"{meta['eval_seed']}) from each sampler.")


def report(prepared: Prepared, trained: dict[str, Trained], device: str, curve: dict[str, dict[str, dict]],
           intro: str, cache: Path | None = None) -> str:
    """The whole markdown: one table per eval set, the learning curves, the acceptance lines."""
    sets = eval_sets(prepared)
    untrained = untrained_rows(prepared, device, cache)
    results = {name: {row: evaluate(t.path, probs, device, cache=name) for row, t in trained.items()}
               for name, probs in sets.items()}
    lines = [intro, ""]
    titles = {"policy": "Solutions sampled by the policy (builtin:arith-tiny, temperature 1)",
              "other": "Solutions from the perturbation sampler (another policy: injected operand / operator / "
                       "arithmetic errors)"}
    for name, probs in sets.items():
        rows = {**{k: v[name] for k, v in untrained.items()}, **results[name]}
        lines += [f"### {titles[name]}", "", *set_table(rows, probs, trained), ""]
    if curve:
        lines += ["### Learning curves (gold and MC hard, by training problems)", "",
                  "| labels | training problems | step AUC (policy) | F1 (policy) | weighted vote (policy) "
                  "| step AUC (other) | F1 (other) |", "|---|---|---|---|---|---|---|"]
        for key, r in curve.items():
            o = r.get("other") or {}
            lines.append(f"| {key} | {fmt(r['policy']['auc'])} | {fmt(r['policy']['f1'])} "
                         f"| {fmt(r['policy']['weighted_vote'])} | {fmt(o.get('auc'))} | {fmt(o.get('f1'))} |")
        lines.append("")
    lines += acceptance(results, untrained, sets)
    return "\n".join(lines)


def acceptance(results: dict[str, dict[str, dict]], untrained: dict[str, dict[str, dict]],
               sets: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Issue 27's three goals, each with its figures."""
    pol = results["policy"]
    out = []
    if GOLD in pol:
        majority = bon.per_problem(candidates(sets["policy"]), bon.majority_vote)
        mean, lo, hi = bon.paired_bootstrap(pol[GOLD]["per_problem"]["weighted_vote"], majority)
        ok = lo > 0
        out.append(f"- Gold PRM's weighted vote vs majority (policy samples): {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]: "
                   f"{'met' if ok else 'NOT met'} (goal: above, interval excluding 0).")
        out.append(f"- {goals_line(pol, {})}")
    if "other" in results and results["other"]:
        oth = results["other"]
        pseudo = {k: v for k, v in oth.items() if k != GOLD}
        if pseudo:
            best = max(pseudo, key=lambda k: pseudo[k]["auc"] or 0.0)
            lik = untrained[LIKELIHOOD]["other"]
            ok = (pseudo[best]["auc"] or 0.0) >= (lik["auc"] or 0.0)
            out.append(f"- Perturbation sampler: best pseudo-label PRM ({best}) step AUC {fmt(pseudo[best]['auc'])}, "
                       f"F1 {fmt(pseudo[best]['f1'])} vs policy likelihood AUC {fmt(lik['auc'])}, F1 {fmt(lik['f1'])}: "
                       f"{'met' if ok else 'NOT met'} (goal: at or above).")
    return out


def write_results(path: Path, text: str) -> None:
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def learning_curve(prepared: Prepared, work: Path, fractions: list[float], **train_kwargs) -> tuple[dict, dict]:
    """Gold and MC hard trained on each fraction of the training problems, evaluated on both sets."""
    trained, out = {}, {}
    for source in (SOURCES[0], SOURCES[1]):
        for fraction in fractions:
            data = subset_export(prepared.export(source), work / f"subset-{source.slug}-{fraction}", fraction)
            n = len({json.loads(ln)["problem_id"] for ln in (data / "train.jsonl").read_text().splitlines() if ln})
            t = train_prm(data, work / f"prm-{source.slug}-{fraction}", use_weights=source.weighted, **train_kwargs)
            key = f"{source.row.split(' (')[0]} | {n}"
            trained[key] = t
            out[key] = {name: evaluate(t.path, probs, train_kwargs.get("device", "cpu"), cache=name)
                        for name, probs in eval_sets(prepared).items()}
    return trained, out


def _train_kwargs(args) -> dict:
    return {"epochs": args.epochs, "lr": args.lr, "head_lr": args.head_lr, "head": args.head, "device": args.device,
            "base": args.base, "threads": args.threads, "reuse": args.reuse}


def _sources(args) -> tuple[Source, ...]:
    if not args.only:
        return SOURCES
    slugs = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in slugs if x not in {s.slug for s in SOURCES} | {"curve", "untrained"}]
    if bad:
        sys.exit(f"--only: unknown sources {bad}; known: {[s.slug for s in SOURCES]}")
    return tuple(s for s in SOURCES if s.slug in slugs)


def _intro(prepared: Prepared, args, where: str, started: float) -> str:
    return (header(prepared.meta, prepared.problems, base=args.base, epochs=args.epochs, lr=args.lr, head=args.head,
                   head_lr=args.head_lr)
            + f" {where}; {time.monotonic() - started:.0f} s"
            + (" (this process; PRMs and scores reused from --work where present, each PRM's train s is its own run's)"
               if args.reuse else "")
            + f". Command: `{' '.join(['python', 'bench/prm.py', *sys.argv[1:]])}`.")


def _curve_fractions(args) -> list[float]:
    return [float(x) for x in args.curve.split(",") if x.strip()] if args.curve else []


def run_from(args) -> int:
    """``--from DIR``: train and evaluate the five PRMs of a prepared DIR on ``--device``."""
    started = time.monotonic()
    prepared = load_prepared(args.from_dir)
    with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        trained = train_sources(prepared, work, _sources(args), **_train_kwargs(args))
        fractions = _curve_fractions(args) if not args.only or "curve" in args.only.split(",") else []
        _, curve = learning_curve(prepared, work, fractions, **_train_kwargs(args))
        if args.only and "untrained" in args.only.split(","):
            untrained_rows(prepared, args.device, work)
        if args.only:  # one part of a parallel run: train and cache the scores; the table is the gather run's
            for t in trained.values():
                for name, probs in eval_sets(prepared).items():
                    r = evaluate(t.path, probs, args.device, cache=name)
                    print(f"[bench] {t.path} on {name}: AUC {fmt(r['auc'])}, F1 {fmt(r['f1'])}, best-of-8 "
                          f"{fmt(r['best_of_n'])}, weighted vote {fmt(r['weighted_vote'])}", flush=True)
            return 0
        text = report(prepared, trained, args.device, curve,
                      _intro(prepared, args, f"From {prepared.path} on {device_name(args.device)}", started), work)
    write_results(Path(args.results), text)
    return 0


def run_all(args) -> int:
    """The whole bench on this machine: prepare, train the five PRMs (and round 2), evaluate."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prmflow-bench-prm-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = prepare(work, work / "prepared", args)
        prepared = load_prepared(work / "prepared")
        train = _train_kwargs(args)
        trained = train_sources(prepared, work, _sources(args), **train)
        if args.round2:
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
        _, curve = learning_curve(prepared, work, _curve_fractions(args), **train)
        text = report(prepared, trained, args.device, curve, _intro(prepared, args, device_name(args.device), started))
    write_results(Path(args.results or RESULTS), text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    phase = ap.add_mutually_exclusive_group()
    phase.add_argument("--prepare", metavar="DIR", help="only run the pipelines and write a prepared DIR")
    phase.add_argument("--from", dest="from_dir", metavar="DIR", help="only train + evaluate from a prepared DIR")
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--eval-problems", type=int, default=400)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--lr", type=float, default=LR, help="the body's learning rate")
    ap.add_argument("--head-lr", type=float, default=HEAD_LR)
    ap.add_argument("--head", choices=("logprob", "reward-token", "value"), default=HEAD)
    ap.add_argument("--curve", default="0.25,0.5",
                    help="fractions of the training problems for the learning curves ('' for none)")
    ap.add_argument("--round2", action="store_true", help="also round 2 (a second MC pipeline run; full run only)")
    ap.add_argument("--only", default=None,
                    help="--from only: train and score only these (comma-separated: gold, mc-hard, mc-soft, "
                         "binary-search, mc-consistency, curve, untrained) into --work, no table; then a run with --reuse "
                         "gathers them")
    ap.add_argument("--reuse", action="store_true",
                    help="take PRMs (and their scores) this bench already made in --work with the same config")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="for training and scoring")
    ap.add_argument("--base", default=BASE_MODEL, help="the PRMs' base model (builtin:NAME or a local directory)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and scoring")
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
