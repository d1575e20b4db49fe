"""Measure the ``arith`` first-error judge: the figures of docs/model-card-arith-judge-tiny.md.

    .venv/bin/python scripts/eval_arith_judge.py --model builtin:arith-judge-tiny --n 1000

Samples one temperature-1 solution of the policy ``builtin:arith-tiny`` for each of ``--n`` fresh
problems (``generate_problems(n, seed=7)``; the judge's training used seeds >= 1000), labels each
with the checker's exact first error (``check_steps`` on the solution's lines), asks the judge
with the ``first-error`` template (greedy), and prints, on two sets:

* natural: every sampled solution (~82% have no wrong step, so "always -1" is a strong baseline);
* balanced: every erroneous solution plus as many correct ones (the first in problem order), the
  setting of ProcessBench, where "always -1" scores 50% and F1 0.

Figures: first-error accuracy (prediction == gold, -1 included), accuracy on erroneous and on
correct solutions, ProcessBench F1 (their harmonic mean), false-alarm rate (an error named in a
correct solution), invalid outputs (no ``\\boxed{k}`` with -1 <= k < n), the always-(-1) baseline,
and a confusion table of gold vs predicted position, and the accuracy per error kind of the first error.
The judge writes a critique line per paragraph before its ``\\boxed{k}`` (see
``scripts/train_arith_judge.py``), hence ``--max-tokens`` 192.

vLLM (in-process, CPU) is used when importable, else transformers; ``--engine`` forces one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_arith_judge import (  # noqa: E402
    VLLM_ENV,
    load_first_error_template,
    parse_verdict,
    render_prompt,
    resolve,
    sample_solutions,
)

EVAL_SEED = 7  # disjoint from training seeds (>= 1000, see scripts/train_arith_judge.py)
DEFAULT_MODEL = "builtin:arith-judge-tiny"
INVALID = "invalid"


def judge_vllm(path: str, prompts: list[str], max_tokens: int, seed: int) -> list[str]:
    for key, value in VLLM_ENV.items():
        os.environ.setdefault(key, value)
    from vllm import LLM, SamplingParams

    llm = LLM(model=path, enforce_eager=True, kv_cache_memory_bytes=256 << 20, block_size=32, seed=seed, dtype="float32")
    outputs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens), use_tqdm=False)
    return [o.outputs[0].text for o in outputs]


def judge_hf(path: str, prompts: list[str], max_tokens: int, batch_size: int = 32) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    texts = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def score(gold: list[int], pred: list[int | None]) -> dict:
    """ProcessBench-style figures for first-error predictions (``None``: unparseable output)."""
    n = len(gold)
    wrong = [i for i, g in enumerate(gold) if g >= 0]
    right = [i for i, g in enumerate(gold) if g < 0]
    acc_err = sum(pred[i] == gold[i] for i in wrong) / len(wrong) if wrong else float("nan")
    acc_ok = sum(pred[i] == -1 for i in right) / len(right) if right else float("nan")
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    confusion: dict[str, Counter] = {}
    for g, p in zip(gold, pred, strict=True):
        confusion.setdefault(str(g), Counter())[INVALID if p is None else str(p)] += 1
    return {
        "n": n,
        "erroneous": len(wrong),
        "correct": len(right),
        "first_error_accuracy": sum(p == g for g, p in zip(gold, pred, strict=True)) / n,
        "baseline_always_minus_one": len(right) / n,
        "accuracy_erroneous": acc_err,
        "accuracy_correct": acc_ok,
        "f1": f1,
        "false_alarm_rate": sum(pred[i] is not None and pred[i] >= 0 for i in right) / len(right) if right else float("nan"),
        "detected_an_error": sum(pred[i] is not None and pred[i] >= 0 for i in wrong) / len(wrong) if wrong else float("nan"),
        "invalid": sum(p is None for p in pred) / n,
        "confusion": {g: dict(c) for g, c in sorted(confusion.items(), key=lambda kv: int(kv[0]))},
    }


def print_report(name: str, m: dict) -> None:
    print(f"\n== {name}: {m['n']} solutions ({m['erroneous']} with a wrong step, {m['correct']} without)")
    for key, label in (
        ("first_error_accuracy", "first-error accuracy"),
        ("baseline_always_minus_one", "baseline: always -1"),
        ("accuracy_erroneous", "accuracy on erroneous solutions"),
        ("accuracy_correct", "accuracy on correct solutions"),
        ("f1", "ProcessBench F1"),
        ("false_alarm_rate", "false alarms (error named, none there)"),
        ("detected_an_error", "erroneous: some error named"),
        ("invalid", "invalid outputs"),
    ):
        print(f"  {label:<40} {100 * m[key]:6.1f}%")
    cols = sorted({c for row in m["confusion"].values() for c in row if c != INVALID}, key=int) + [INVALID]
    print("  confusion (rows: gold first error, columns: predicted)")
    print("  " + "gold".rjust(6) + "".join(f"{c:>8}" for c in cols) + "   total")
    for g, row in m["confusion"].items():
        print("  " + g.rjust(6) + "".join(f"{row.get(c, 0):>8}" for c in cols) + f"{sum(row.values()):>8}")


def by_kind(rows: list[dict], pred: list[int | None]) -> dict:
    """Per error kind of the gold first error: how many, found exactly, and some error named."""
    out: dict[str, dict] = {}
    for r, p in zip(rows, pred, strict=True):
        if r["first_error"] < 0:
            continue
        m = out.setdefault(r["error_kind"], {"n": 0, "found": 0, "named": 0})
        m["n"] += 1
        m["found"] += p == r["first_error"]
        m["named"] += p is not None and p >= 0
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["n"]))


def balanced_indices(gold: list[int]) -> list[int]:
    wrong = [i for i, g in enumerate(gold) if g >= 0]
    right = [i for i, g in enumerate(gold) if g < 0][: len(wrong)]
    return sorted(wrong + right)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="builtin:NAME or a judge model directory")
    ap.add_argument("--n", type=int, default=1000, help="problems (one policy solution each)")
    ap.add_argument("--seed", type=int, default=EVAL_SEED, help="problem seed (training uses >= 1000)")
    ap.add_argument("--sample-seed", type=int, default=1, help="vLLM engine seed of the policy's sampling")
    ap.add_argument("--max-tokens", type=int, default=192, help="the judge writes a critique line per paragraph first")
    ap.add_argument("--engine", choices=("auto", "vllm", "hf"), default="auto", help="engine of the judge")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    ap.add_argument("--show", type=int, default=0, help="print this many judged erroneous solutions")
    args = ap.parse_args(argv)
    if args.seed >= 1000:
        print(f"warning: --seed {args.seed} is in the training range (>= 1000)", file=sys.stderr)

    started = time.time()
    rows = sample_solutions(args.seed, args.n, 1, args.sample_seed)
    template = load_first_error_template()
    prompts = [render_prompt(template, r["problem"], r["steps"]) for r in rows]
    path = resolve(args.model)
    engine = args.engine
    if engine == "auto":
        try:
            import vllm  # noqa: F401

            engine = "vllm"
        except ImportError:
            engine = "hf"
    judged_at = time.time()
    texts = judge_vllm(path, prompts, args.max_tokens, 0) if engine == "vllm" else judge_hf(path, prompts, args.max_tokens)
    judge_seconds = time.time() - judged_at
    gold = [r["first_error"] for r in rows]
    pred = [parse_verdict(template, t, len(r["steps"])) for t, r in zip(texts, rows, strict=True)]
    keep = balanced_indices(gold)
    metrics = {
        "natural": score(gold, pred),
        "balanced": score([gold[i] for i in keep], [pred[shown] for shown in keep]),
        "by_error_kind": by_kind(rows, pred),
        "mean_output_chars": sum(len(t) for t in texts) / len(texts),
        "outputs_ending_in_box": sum(t.rstrip().endswith("}") and "\\boxed{" in t for t in texts) / len(texts),
    }
    shown = 0
    for r, t, p in zip(rows, texts, pred, strict=True):
        if shown >= args.show or r["first_error"] < 0:
            continue
        shown += 1
        print(f"--- {r['problem_id']} gold {r['first_error']} ({r['error_kind']}) judged {p} ({t!r})")
        print("\n".join(f"  [{i}] {s}" for i, s in enumerate(r["steps"])))
    print(
        f"judge {args.model} ({path}), engine {engine}; policy builtin:arith-tiny at T=1, {args.n} problems, "
        f"seed {args.seed}, sampling seed {args.sample_seed}; judging took {judge_seconds:.0f} s, all {time.time() - started:.0f} s"
    )
    print_report("natural (all sampled solutions)", metrics["natural"])
    print_report("balanced (all erroneous + as many correct)", metrics["balanced"])
    print("\n== erroneous solutions by the kind of their first error (natural set)")
    for kind, m in metrics["by_error_kind"].items():
        print(f"  {kind:<18} {m['n']:>5}  first error found {m['found']:>4} ({100 * m['found'] / m['n']:5.1f}%)"
              f"  some error named {m['named']:>4}")  # fmt: skip
    print(f"\n  outputs ending in \\boxed{{...}}: {100 * metrics['outputs_ending_in_box']:.1f}%, "
          f"mean output {metrics['mean_output_chars']:.0f} characters")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "engine": engine, "seed": args.seed, "metrics": metrics}, indent=2) + "\n")
    return metrics


if __name__ == "__main__":
    main()
