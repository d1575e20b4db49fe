"""Grading speed: prmflow's ``math`` labeler vs plain Math-Verify, on the same pairs, in one run.

Each section grades the same (answer, reference) pairs twice, once with plain Math-Verify,
``verify(parse(ref), parse(ans))`` with its defaults, and once with ``MathLabeler().label(ans, ref)``
(its default config: the plain-number fast path, Math-Verify in the per-process worker pool under a
5 s limit), and prints pairs/s of each, the ratio, and how many verdicts differ where plain
Math-Verify read both sides.

- numeric: GSM8K test answers (``#### N``): each reference against itself, a perturbed value and
  equivalent rewritings ("$N", "N dollars", "N.0", "1,234", "The answer is N.", "A: N").
- latex: MATH500 answers, in ``$...$``: each against itself, ``\\boxed{}``, equivalent rewritings
  (``\\dfrac`` for ``\\frac``, no ``\\left``/``\\right``) and a perturbed value (one digit changed).
- solutions: whole GSM8K-style solutions ("A: N" last line, half of them wrong), scored against
  the truth as well.

Goal (issue 9): >= 10x plain Math-Verify on numeric answers, >= 1x on LaTeX, identical verdicts.

    .venv/bin/python bench/grading.py [--sections numeric,latex] [--limit N]

A section is a function ``(args) -> dict`` registered in ``SECTIONS``; it prints its own lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(os.environ.get("PRMFLOW_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


# --- pairs ----------------------------------------------------------------------------------------

def _perturb_number(n: str) -> str:
    v = int(n.replace(",", "")) if re.fullmatch(r"-?[\d,]+", n) else float(n)
    return str(v + 1) if isinstance(v, int) else f"{v * 2:g}"


def gsm8k_pairs(limit: int | None) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in open(DATA / "gsm8k" / "test.jsonl")][:limit]
    pairs = []
    for r in rows:
        ref = r["answer"].split("####")[-1].strip()
        n = ref.replace(",", "")
        answers = [ref, _perturb_number(ref), f"${ref}", f"{ref} dollars", f"The answer is {ref}.", f"A: {ref}"]
        if re.fullmatch(r"-?\d+", n):
            answers.append(f"{n}.0")
            if abs(int(n)) >= 1000:
                answers.append(f"{int(n):,}")
        pairs += [(a, ref) for a in answers]
    return pairs


def _perturb_latex(ref: str) -> str | None:
    m = re.search(r"\d", ref)
    if m is None:
        return None
    d = str((int(m.group()) + 1) % 10)
    return ref[: m.start()] + d + ref[m.end() :]


def math500_pairs(limit: int | None) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in open(DATA / "math500" / "test.jsonl")][:limit]
    pairs = []
    for r in rows:
        ref = r["answer"].strip()
        answers = {f"${ref}$", f"\\boxed{{{ref}}}"}
        for rewrite in (ref.replace("\\frac", "\\dfrac"), re.sub(r"\\(?:left|right)(?=[()\[\]|.])", "", ref)):
            if rewrite != ref:
                answers.add(f"${rewrite}$")
        wrong = _perturb_latex(ref)
        if wrong is not None:
            answers.add(f"${wrong}$")
        pairs += [(a, f"${ref}$") for a in sorted(answers)]
    return pairs


# --- the two graders ------------------------------------------------------------------------------

class PlainMathVerify:
    """``verify(parse(ref), parse(ans))`` with Math-Verify's defaults; None where it read nothing."""

    def __init__(self) -> None:
        from math_verify import parse, verify

        self._parse, self._verify = parse, verify

    def grade(self, answer: str, reference: str) -> bool | None:
        gold, pred = self._parse(reference), self._parse(answer)
        ok = self._verify(gold, pred)
        return ok if gold and pred else None

    def close(self) -> None:
        pass


class Prmflow:
    """``MathLabeler().label(ans, ref)`` with its defaults: fast path, worker pool, 5 s limit."""

    def __init__(self) -> None:
        from prmflow.labelers.outcome.math import MathLabeler

        self._labeler = MathLabeler()

    def grade(self, answer: str, reference: str) -> bool | None:
        outcome = self._labeler.label(answer, reference)
        return None if outcome.value is None else outcome.value == 1.0

    def close(self) -> None:
        self._labeler.close()


BLOCK = 50


def compare(name: str, pairs: list[tuple[str, str]], truth: list[bool] | None = None) -> dict:
    """Both graders over the same pairs, alternating blocks of ``BLOCK`` pairs, so that a busy
    machine slows both alike. Both first grade the same warm-up pairs (off the clock): Math-Verify's
    LaTeX parser (ANTLR) is slow until its tables are built, in each process once."""
    graders = {"plain": PlainMathVerify(), "prmflow": Prmflow()}
    seconds = dict.fromkeys(graders, 0.0)
    verdicts: dict[str, list[bool | None]] = {g: [] for g in graders}
    try:
        warm = pairs[:: max(1, len(pairs) // 20)][:20]
        for grader in graders.values():
            for answer, reference in warm:
                grader.grade(answer, reference)
        for b in range(0, len(pairs), BLOCK):
            block = pairs[b : b + BLOCK]
            for g, grader in graders.items():
                start = time.perf_counter()
                verdicts[g] += [grader.grade(answer, reference) for answer, reference in block]
                seconds[g] += time.perf_counter() - start
    finally:
        for grader in graders.values():
            grader.close()
    plain, ours = verdicts["plain"], verdicts["prmflow"]
    read = [i for i, v in enumerate(plain) if v is not None]
    differ = [i for i in read if ours[i] != plain[i]]
    result = {
        "section": name, "pairs": len(pairs), "plain_pairs_per_s": len(pairs) / seconds["plain"],
        "prmflow_pairs_per_s": len(pairs) / seconds["prmflow"], "speedup": seconds["plain"] / seconds["prmflow"],
        "plain_read_both": len(read), "verdicts_differ": len(differ), "equal": sum(bool(plain[i]) for i in read),
    }
    print(f"{name:8s} {len(pairs):6d} pairs ({result['equal']} equal) | plain math-verify "
          f"{result['plain_pairs_per_s']:7.0f} pairs/s | prmflow {result['prmflow_pairs_per_s']:7.0f} pairs/s | "
          f"{result['speedup']:5.1f}x | verdicts differ on {len(differ)} of {len(read)} pairs plain math-verify read")
    if truth is not None:
        result["plain_agrees_with_truth"] = sum(bool(p) == t for p, t in zip(plain, truth, strict=True))
        result["prmflow_agrees_with_truth"] = sum(bool(o) == t for o, t in zip(ours, truth, strict=True))
        print(f"{'':8s} agreement with the truth: plain math-verify {result['plain_agrees_with_truth']}/{len(pairs)}"
              f", prmflow {result['prmflow_agrees_with_truth']}/{len(pairs)}")
    else:
        for i in differ[:10]:
            print(f"    differs: answer={pairs[i][0]!r} reference={pairs[i][1]!r} plain={plain[i]} prmflow={ours[i]}")
    return result


def numeric(args) -> dict:
    return compare("numeric", gsm8k_pairs(args.limit))


def latex(args) -> dict:
    return compare("latex", math500_pairs(args.limit))


def solutions(args) -> dict:
    """Whole GSM8K-style solutions, as the held-back set of issue 9 writes them: the rationale
    (``$`` as currency, ``<<a*b=c>>`` notes) and "A: N" on the last line, every other one made
    wrong. Both graders get the whole text; the truth is known, so both are scored against it."""
    rows = [json.loads(line) for line in open(DATA / "gsm8k" / "test.jsonl")][: args.limit]
    pairs: list[tuple[str, str]] = []
    truth: list[bool] = []
    for r in rows:
        body, ref = r["answer"].split("####")
        ref = ref.strip()
        for right in (True, False):
            value = ref if right else _perturb_number(ref)
            lines = body.rstrip().split("\n")
            lines[-1] = lines[-1].replace(f">>{ref}", f">>{value}")
            pairs.append(("\n".join(lines) + f"\nA: {value}", ref))
            truth.append(right)
    return compare("solutions", pairs, truth)


def code(args) -> dict:
    """Sandboxed code grading: HumanEval's canonical solutions, each a fresh bubblewrap sandbox
    (namespaces, rlimits, a private tmpfs) running the solution and its tests in a new Python;
    executions/s with 1 worker and with the labeler's pool, side by side. Every verdict must be
    1.0, so a broken sandbox cannot look fast."""
    import gzip

    from prmflow.labelers.outcome.code import WORKERS_PER_CORE, CodeConfig, CodeLabeler, humaneval_tests
    from prmflow.sandbox.pool import default_workers
    from prmflow.sources.humaneval import solution_steps

    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][: args.limit]
    pairs = [("\n".join(solution_steps(r["canonical_solution"])), humaneval_tests(r["prompt"], r["test"], r["entry_point"]))
             for r in rows]

    def measure(workers: int) -> float:
        labeler = CodeLabeler(CodeConfig(workers=workers))
        start = time.perf_counter()
        outcomes = labeler.label_many(pairs)
        seconds = time.perf_counter() - start
        wrong = [o for o in outcomes if o.value != 1.0]
        if wrong:
            raise SystemExit(f"{len(wrong)} canonical solutions did not pass, e.g. {wrong[0]}")
        return len(pairs) / seconds

    print(f"code: {len(pairs)} HumanEval executions in the sandbox")
    result = {"section": "code", "executions": len(pairs), "per_s": {}}
    sequential = measure(1)
    for workers in sorted({1, default_workers(), WORKERS_PER_CORE * default_workers()}):
        per_s = sequential if workers == 1 else measure(workers)
        result["per_s"][workers] = per_s
        print(f"  {workers:>3} worker(s): {per_s:8.1f} executions/s   ({per_s / sequential:.2f}x one worker)")
    return result


SECTIONS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "numeric": numeric, "latex": latex, "solutions": solutions, "code": code,
}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {list(SECTIONS)}")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N problems of each data set")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = parser.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; known: {list(SECTIONS)}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; data: {DATA}")
    results = [SECTIONS[name](args) for name in names]
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":  # the guard matters: the pool's spawned workers import this module
    sys.exit(0 if main() else 1)
