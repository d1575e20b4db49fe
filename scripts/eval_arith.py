"""Measure the ``arith`` policy: the figures of docs/model-card-arith-tiny.md.

    .venv/bin/python scripts/eval_arith.py --model builtin:arith-tiny --n 1000

Samples one solution per problem for ``--n`` fresh problems (``generate_problems(n, seed=7)``:
training only ever uses seeds >= 1000) at each temperature (greedy and 1.0 by default), checks
every solution with :func:`prmflow.domains.arith.check_solution`, and prints

* format-following: the solution is ``a op b = c`` lines then one final ``The answer is N`` line
  (:attr:`CheckResult.well_formed`);
* final-answer accuracy; "solved" (right answer and no wrong step); right answers reached through
  a wrong step (the outcome/process gap a PRM exists for);
* a histogram of the first-error step index, and the first error's kind, both fine-grained and
  grouped as arithmetic slip / wrong operand / other.

vLLM (in-process, CPU) is used when importable, else transformers; ``--engine`` forces one.
Sampling is seeded (``--sample-seed``: the vLLM engine seed, or torch's for transformers), so
runs repeat on the same machine and engine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prmflow.domains.arith import (  # noqa: E402
    ERROR_KINDS,
    ArithProblem,
    CheckResult,
    check_solution,
    format_prompt,
    generate_problems,
)

EVAL_SEED = 7  # disjoint from training seeds (>= 1000, see scripts/train_arith.py)
DEFAULT_MODEL = "builtin:arith-tiny"
GROUPS = {
    "arithmetic": "arithmetic slip",
    "unknown_operand": "wrong operand",
    "off_path": "wrong operand",
    "distractor": "wrong operand",
    "propagated": "wrong operand",
    "wrong_operation": "other",
    "malformed": "other",
    "wrong_answer": "other",
    "unsupported_answer": "other",
}
# The engine settings the pipeline uses on CPU (see the Makefile): in-process, one OMP thread.
VLLM_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


def resolve(model: str) -> str:
    try:
        from prmflow.models import resolve_model_path
    except ImportError:  # the helper lives elsewhere in the package; keep the script usable without it
        if model.startswith("builtin:"):
            return str(Path(__file__).resolve().parents[1] / "prmflow" / "models" / model.split(":", 1)[1])
        return model
    return resolve_model_path(model)


def sample_vllm(
    path: str, prompts: list[str], temperature: float, max_tokens: int, seed: int, llm=None, dtype: str = "float32"  # noqa: ANN001
):
    """Completions from an in-process vLLM engine; returns (texts, engine) so callers reuse it."""
    for key, value in VLLM_ENV.items():
        os.environ.setdefault(key, value)
    from vllm import LLM, SamplingParams

    if llm is None:
        llm = LLM(model=path, enforce_eager=True, kv_cache_memory_bytes=256 << 20, block_size=32, seed=seed, dtype=dtype)
    # No per-request SamplingParams(seed=...): vLLM 0.32 on CPU crashes with "CPU Generator does not
    # use offset" once chunked prefill splits a seeded request. The engine seed (LLM(seed=...))
    # plus a fixed request order make the run repeat instead.
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return [o.outputs[0].text for o in outputs], llm


def sample_hf(path: str, prompts: list[str], temperature: float, max_tokens: int, seed: int, batch_size: int = 128):
    """Completions from transformers (left-padded batches); slower than vLLM, same format."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    texts = []
    for start in range(0, len(prompts), batch_size):
        torch.manual_seed(seed + start)
        enc = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        kwargs = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id, **kwargs)
        texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def summarize(problems: list[ArithProblem], results: list[CheckResult]) -> dict:
    n = len(results)
    first_errors = [r.first_error for r in results if r.first_error is not None]
    kinds = Counter(e.error for e in first_errors)
    by_ops: dict[int, list[bool]] = {}
    for p, r in zip(problems, results, strict=True):
        by_ops.setdefault(p.num_ops, []).append(r.answer_correct)
    return {
        "n": n,
        "format_following": sum(r.well_formed for r in results) / n,
        "final_answer_accuracy": sum(r.answer_correct for r in results) / n,
        "solved": sum(r.solved for r in results) / n,
        "right_answer_with_wrong_step": sum(r.answer_correct and r.first_error_index >= 0 for r in results) / n,
        "with_error": len(first_errors) / n,
        "step_accuracy": sum(sum(r.labels) for r in results) / max(1, sum(len(r.labels) for r in results)),
        "first_error_step": dict(sorted(Counter(r.first_error_index for r in results if r.first_error_index >= 0).items())),
        "first_error_kind": {k: kinds[k] for k in ERROR_KINDS if kinds[k]},
        "first_error_group": dict(Counter(GROUPS[e.error] for e in first_errors).most_common()),
        "accuracy_by_num_ops": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_ops.items())},
    }


def print_table(metrics: dict[str, dict]) -> None:
    temps = list(metrics)
    rows: list[tuple[str, list[str]]] = []

    def pct(key: str) -> list[str]:
        return [f"{100 * metrics[t][key]:.1f}%" for t in temps]

    rows += [
        ("format-following", pct("format_following")),
        ("final-answer accuracy", pct("final_answer_accuracy")),
        ("solved (no wrong step)", pct("solved")),
        ("right answer, wrong step", pct("right_answer_with_wrong_step")),
        ("step accuracy (labels)", pct("step_accuracy")),
    ]
    steps = sorted({k for t in temps for k in metrics[t]["first_error_step"]})
    rows += [(f"first error at step {k}", [str(metrics[t]["first_error_step"].get(k, 0)) for t in temps]) for k in steps]
    groups = ("arithmetic slip", "wrong operand", "other")
    rows += [(f"first error: {g}", [str(metrics[t]["first_error_group"].get(g, 0)) for t in temps]) for g in groups]
    kinds = [k for k in ERROR_KINDS if any(k in metrics[t]["first_error_kind"] for t in temps)]
    rows += [(f"  kind {k}", [str(metrics[t]["first_error_kind"].get(k, 0)) for t in temps]) for k in kinds]
    ops = sorted({k for t in temps for k in metrics[t]["accuracy_by_num_ops"]})
    rows += [(f"accuracy, {k} ops", [f"{100 * metrics[t]['accuracy_by_num_ops'][k]:.1f}%" for t in temps]) for k in ops]
    width = max(len(name) for name, _ in rows)
    header = "metric".ljust(width) + "".join(f"{'T=' + t:>12}" for t in temps)
    print(header)
    print("-" * len(header))
    for name, cells in rows:
        print(name.ljust(width) + "".join(f"{c:>12}" for c in cells))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="builtin:NAME or a model directory")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=EVAL_SEED, help="problem seed (training uses >= 1000)")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--engine", choices=("auto", "vllm", "hf"), default="auto")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="vLLM weights dtype")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    ap.add_argument("--show", type=int, default=0, help="print this many sampled solutions with their labels")
    args = ap.parse_args(argv)
    if args.seed >= 1000:
        print(f"warning: --seed {args.seed} is in the training range (>= 1000)", file=sys.stderr)

    path = resolve(args.model)
    problems = generate_problems(args.n, seed=args.seed)
    prompts = [format_prompt(p) for p in problems]
    engine = args.engine
    if engine == "auto":
        try:
            import vllm  # noqa: F401

            engine = "vllm"
        except ImportError:
            engine = "hf"
    metrics: dict[str, dict] = {}
    llm = None
    for temperature in args.temperatures:
        started = time.time()
        if engine == "vllm":
            texts, llm = sample_vllm(path, prompts, temperature, args.max_tokens, args.sample_seed, llm, args.dtype)
        else:
            texts = sample_hf(path, prompts, temperature, args.max_tokens, args.sample_seed)
        results = [check_solution(p, t) for p, t in zip(problems, texts, strict=True)]
        key = f"{temperature:g}"
        metrics[key] = summarize(problems, results) | {"seconds": round(time.time() - started, 1)}
        for p, r in list(zip(problems, results, strict=True))[: args.show]:
            print(f"--- T={key} {p.problem_id}: {p.prompt}\n" + "\n".join(
                f"  {'+' if v.correct else '-'} {v.text}" + (f"   [{v.error}]" if v.error else "") for v in r.verdicts
            ) + f"\n  (answer {p.answer})")
    dtype = args.dtype if engine == "vllm" else "float32"
    print(f"model {args.model} ({path}), engine {engine} ({dtype}), {args.n} problems, seed {args.seed}, max_tokens {args.max_tokens}")
    print_table(metrics)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "engine": engine, "dtype": dtype, "seed": args.seed, "metrics": metrics}, indent=2) + "\n")
    return metrics


if __name__ == "__main__":
    main()
