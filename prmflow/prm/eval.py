"""``prmflow eval-prm``: evaluate any PRM on ProcessBench and on a frozen best-of-N candidate set.

    prmflow eval-prm --prm PATH [--adapter auto] [--processbench gsm8k,math] [--bon FILE.jsonl[.gz]]
                     [--threshold auto] [--limit N] [--out RESULTS.json]

Adapters (``--adapter``), each turning (problem, steps) into one score in [0, 1] per step:

* ``prmflow``: a PRM saved by ``prmflow train-prm`` (:class:`~prmflow.prm.scorer.PRMScorer`; every head);
* ``qwen-prm``: Qwen2.5-Math-PRM style: the chat template (system, user = problem, assistant = the
  steps each followed by ``<extra_0>``), a two-class head read at every ``<extra_0>``, the score the
  softmax's second class. The head is an ``AutoModelForTokenClassification`` with 2 labels, or the
  model's own class through ``AutoModel`` (``--trust-remote-code`` for Qwen's published checkpoint);
* ``math-shepherd``: Math-Shepherd style: ``problem step_1 ки\\nstep_2 ки ...``, a causal LM's logits of
  ``+`` and ``-`` at every ``ки``, the score the softmax's ``+``;
* ``likelihood``: a causal LM's lowest token probability over each step (no training: the baseline
  every PRM should beat on the policy's own samples);
* ``gold``: the dataset's own labels as scores (1 before the first error, 0 from it): a check of the
  metric code, which must give F1 1.0.

The two reward-token adapters tokenize the whole text at once, as their models were trained, and
find the step tags in it (tokenizing pieces apart moved a ProcessBench score from 56.1 to 60.3 in
ProcessBench PR 12); a solution whose tags do not come out as one token per step is counted as
``unscored``, never silently misaligned.

**Threshold rule.** A step is erroneous when its score is <= the threshold; a solution's predicted
first error is its first erroneous step (-1: none). ``--threshold auto`` takes the PRM's own: a
prmflow PRM's ``threshold`` from prm.json (chosen on its validation split at training), 0.5 for every
other adapter (ProcessBench's rule for PRMs). A number overrides it. Step AUC needs no threshold.

**ProcessBench** (Zheng et al. 2024): per split, accuracy on erroneous solutions (predicted first
error = the label), on correct ones (none predicted), their harmonic mean (F1), and the step AUC over
the steps up to each labelled first error. Files ``<split>.json`` under ``--processbench-dir``
(default ``../shared/data/processbench``, as tests reach the shared data).

**Best-of-N** (``--bon``): one JSON line per solution: ``problem_id``, ``prompt``, ``steps``,
``answer``, ``right`` (bool), optionally ``first_error`` (for the step metrics and ``gold``).
Reported: best-of-N by the lowest step score, the PRM-weighted vote, majority vote, any-of-N and a
random pick (:mod:`prmflow.prm.bon`). ``bench/prm.py --prepare`` writes such a file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prmflow.core.section import ConfigError
from prmflow.prm import bon
from prmflow.prm.metrics import THRESHOLD, step_metrics

ADAPTERS = ("auto", "prmflow", "qwen-prm", "math-shepherd", "likelihood", "gold")
SPLITS = ("gsm8k", "math")
DEFAULT_PROCESSBENCH = "../shared/data/processbench"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class Row:
    prompt: str
    steps: tuple[str, ...]
    first_error: int | None
    """The labelled first wrong step (-1: none; None: unknown)."""


class Adapter(Protocol):
    name: str
    threshold: float

    def score_rows(self, rows: Sequence[Row]) -> list[list[float | None]]: ...


def gold_scores(row: Row) -> list[float | None]:
    if row.first_error is None:
        return [None] * len(row.steps)
    return [1.0 if row.first_error < 0 or i < row.first_error else 0.0 for i in range(len(row.steps))]


class GoldAdapter:
    name = "gold"
    threshold = THRESHOLD

    def score_rows(self, rows: Sequence[Row]) -> list[list[float | None]]:
        return [gold_scores(r) for r in rows]


class PrmflowAdapter:
    name = "prmflow"

    def __init__(self, path: str, device: str, batch_size: int) -> None:
        from prmflow.prm.scorer import PRMScorer

        self.scorer = PRMScorer(path, device=device, batch_size=batch_size)
        self.threshold = self.scorer.threshold

    def score_rows(self, rows: Sequence[Row]) -> list[list[float | None]]:
        return self.scorer.score_many([(r.prompt, list(r.steps)) for r in rows])


class LikelihoodAdapter:
    name = "likelihood"
    threshold = THRESHOLD

    def __init__(self, path: str, device: str, batch_size: int, prompt_template: str, max_length: int) -> None:
        from prmflow.prm.baselines import LikelihoodScorer
        from prmflow.prm.encoding import StepFormat

        self.scorer = LikelihoodScorer(path, StepFormat(prompt_template=prompt_template), device=device,
                                       batch_size=batch_size, max_length=max_length)

    def score_rows(self, rows: Sequence[Row]) -> list[list[float | None]]:
        return self.scorer.score_many([(r.prompt, list(r.steps)) for r in rows])


class _TagAdapter:
    """Shared by the reward-token adapters: whole-text tokenization, tag positions, batched forward."""

    threshold = THRESHOLD

    def __init__(self, path: str, device: str, batch_size: int, max_length: int) -> None:
        from transformers import AutoTokenizer

        from prmflow.prm.model import resolve_device

        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _one_token(self, text: str, what: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ConfigError(f"{what} {text!r} must be one token of this tokenizer, got {ids}")
        return ids[0]

    def encode(self, row: Row) -> list[int]:
        raise NotImplementedError

    def step_scores(self, logits, positions):  # logits of one sequence (T, ...) -> one score per position
        raise NotImplementedError

    def forward(self, input_ids, attention_mask):
        raise NotImplementedError

    def score_rows(self, rows: Sequence[Row]) -> list[list[float | None]]:
        import torch

        encoded = [self.encode(r) for r in rows]
        out: list[list[float | None]] = [[None] * len(r.steps) for r in rows]
        usable = []
        for i, (row, ids) in enumerate(zip(rows, encoded, strict=True)):
            positions = [p for p, t in enumerate(ids) if t == self.tag_id]
            if len(positions) == len(row.steps) and len(ids) <= self.max_length:
                usable.append((i, ids, positions))
        usable.sort(key=lambda u: len(u[1]))
        pad = self.tokenizer.pad_token_id
        with torch.no_grad():
            for start in range(0, len(usable), self.batch_size):
                chunk = usable[start : start + self.batch_size]
                width = max(len(ids) for _, ids, _ in chunk)
                ids_t = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for b, (_, ids, _) in enumerate(chunk):
                    ids_t[b, : len(ids)] = torch.tensor(ids)
                    mask[b, : len(ids)] = 1
                logits = self.forward(ids_t.to(self.device), mask.to(self.device)).float().cpu()
                for b, (i, _, positions) in enumerate(chunk):
                    out[i] = self.step_scores(logits[b], positions)
        return out


class QwenPRMAdapter(_TagAdapter):
    name = "qwen-prm"

    def __init__(self, path: str, device: str, batch_size: int, max_length: int, step_token: str,
                 trust_remote_code: bool) -> None:
        super().__init__(path, device, batch_size, max_length)
        import torch
        from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

        self.step_token = step_token
        self.tag_id = self._one_token(step_token, "--step-token")
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if any(a.endswith("ForTokenClassification") for a in config.architectures or []):
            model = AutoModelForTokenClassification.from_pretrained(path, dtype=torch.float32)
        else:  # Qwen2.5-Math-PRM: Qwen2ForProcessRewardModel, whose logits are outputs[0]
            model = AutoModel.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)
        self.model = model.to(self.device).eval()

    def text(self, row: Row) -> str:
        steps = [s.replace(self.step_token, "") for s in row.steps]
        answer = "".join(s + self.step_token for s in steps)
        if self.tokenizer.chat_template:
            messages = [{"role": "system", "content": QWEN_SYSTEM}, {"role": "user", "content": row.prompt},
                        {"role": "assistant", "content": answer}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        return f"{QWEN_SYSTEM}\n{row.prompt}\n{answer}"

    def encode(self, row: Row) -> list[int]:
        return self.tokenizer(self.text(row), add_special_tokens=not self.tokenizer.chat_template)["input_ids"]

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        logits = out.logits if hasattr(out, "logits") else out[0]
        if logits.shape[-1] != 2:
            raise ConfigError(f"--adapter qwen-prm needs a two-class head, the model gives "
                              f"{logits.shape[-1]} logits per token")
        return logits

    def step_scores(self, logits, positions):
        return logits[positions].softmax(-1)[:, 1].tolist()


class MathShepherdAdapter(_TagAdapter):
    name = "math-shepherd"

    def __init__(self, path: str, device: str, batch_size: int, max_length: int, tag: str, good: str,
                 bad: str) -> None:
        super().__init__(path, device, batch_size, max_length)
        import torch
        from transformers import AutoModelForCausalLM

        self.tag = tag
        self.tag_id = self.tokenizer(tag, add_special_tokens=False)["input_ids"][-1]
        # Math-Shepherd's own recipe: tokenizer.encode("+ -")[1:] (after the BOS)
        pair = self.tokenizer(f"{good} {bad}", add_special_tokens=False)["input_ids"]
        self.candidates = pair if len(pair) == 2 else [self._one_token(good, "--good-token"),
                                                       self._one_token(bad, "--bad-token")]
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(self.device).eval()

    def text(self, row: Row) -> str:
        steps = [s.replace(self.tag, "").strip() for s in row.steps]
        return f"{row.prompt} " + "\n".join(f"{s} {self.tag}" for s in steps)

    def encode(self, row: Row) -> list[int]:
        return self.tokenizer(self.text(row))["input_ids"]

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits[..., self.candidates]

    def step_scores(self, logits, positions):
        return logits[positions].softmax(-1)[:, 0].tolist()


def detect(path: str) -> str:
    """The adapter a path looks like: prm.json -> prmflow; a token classifier -> qwen-prm; a tokenizer
    with the ``ки`` tag -> math-shepherd; anything else is refused (name it with --adapter)."""
    p = Path(path)
    if path == "gold":
        return "gold"
    if (p / "prm.json").is_file():
        return "prmflow"
    config = p / "config.json"
    if config.is_file():
        arch = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
        if any(a.endswith("ForTokenClassification") or "ProcessRewardModel" in a for a in arch):
            return "qwen-prm"
        tok = p / "tokenizer.json"
        if tok.is_file() and "ки" in tok.read_text(encoding="utf-8"):
            return "math-shepherd"
    raise ConfigError(f"--adapter auto cannot tell what {path!r} is; give --adapter "
                      f"({', '.join(ADAPTERS[1:])})")


def make_adapter(args) -> Adapter:
    from prmflow.models import resolve_model_path

    kind = args.adapter if args.adapter != "auto" else detect(args.prm)
    if kind == "gold":
        return GoldAdapter()
    path = resolve_model_path(args.prm)
    if not Path(path).is_dir():
        raise ConfigError(f"--prm must be a local model directory (nothing is downloaded), got {args.prm!r}")
    if kind == "prmflow":
        return PrmflowAdapter(path, args.device, args.batch_size)
    if kind == "likelihood":
        return LikelihoodAdapter(path, args.device, args.batch_size, args.prompt_template, args.max_length)
    if kind == "qwen-prm":
        return QwenPRMAdapter(path, args.device, args.batch_size, args.max_length, args.step_token,
                              args.trust_remote_code)
    return MathShepherdAdapter(path, args.device, args.batch_size, args.max_length, args.tag, args.good_token,
                               args.bad_token)


# ------------------------------------------------------------------------------------------- data

def load_processbench(directory: str, split: str, limit: int | None) -> list[Row]:
    path = Path(directory) / f"{split}.json"
    if not path.is_file():
        raise ConfigError(f"--processbench-dir {directory!r} has no {split}.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = [Row(d["problem"], tuple(d["steps"]), int(d["label"])) for d in data]
    return rows[:limit] if limit else rows


def load_bon(path: str, limit: int | None) -> tuple[list[str], list[Row], list[dict]]:
    """Problem id per solution, the rows, and the raw records (answer, right) of a best-of-N file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--bon {path!r} does not exist")
    opener = gzip.open if p.suffix == ".gz" else open
    records = []
    with opener(p, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{path}:{line_no} is not a JSON line ({e})") from None
            missing = [k for k in ("problem_id", "prompt", "steps", "right") if k not in rec]
            if missing:
                raise ConfigError(f"{path}:{line_no} lacks {missing}")
            records.append(rec)
    if limit:
        keep = list(dict.fromkeys(r["problem_id"] for r in records))[:limit]
        records = [r for r in records if r["problem_id"] in set(keep)]
    rows = [Row(r["prompt"], tuple(r["steps"]), r.get("first_error")) for r in records]
    return [r["problem_id"] for r in records], rows, records


# ---------------------------------------------------------------------------------------- metrics

def processbench_metrics(rows: Sequence[Row], scores: Sequence[Sequence[float | None]], threshold: float) -> dict:
    scored = [(s, r) for s, r in zip(scores, rows, strict=True) if s and all(v is not None for v in s)]
    m = step_metrics([(s, gold_scores(r)) for s, r in scored], threshold)
    return {"rows": len(rows), "unscored": len(rows) - len(scored), "erroneous": m.erroneous,
            "acc_erroneous": m.acc_erroneous, "acc_correct": m.acc_correct, "f1": m.processbench_f1,
            "step_auc": m.step_auc, "threshold": threshold}


def bon_metrics(ids: Sequence[str], rows: Sequence[Row], records: Sequence[dict],
                scores: Sequence[Sequence[float | None]], threshold: float) -> dict:
    groups: dict[str, list[bon.Candidate]] = {}
    for pid, rec, sc in zip(ids, records, scores, strict=True):
        answer = rec.get("answer")
        groups.setdefault(pid, []).append(bon.Candidate(None if answer is None else str(answer), bool(rec["right"]), sc))
    problems = list(groups.values())
    out = {"problems": len(problems), "solutions": len(rows),
           **{name: bon.accuracy(bon.per_problem(problems, fn)) for name, fn in bon.SELECTORS.items()}}
    majority = bon.per_problem(problems, bon.majority_vote)
    for name in ("best-of-N", "weighted vote"):
        mean, lo, hi = bon.paired_bootstrap(bon.per_problem(problems, bon.SELECTORS[name]), majority)
        out[f"{name} vs majority"] = {"mean": mean, "ci95": [lo, hi]}
    if any(r.first_error is not None for r in rows):
        out["steps"] = processbench_metrics([r for r in rows if r.first_error is not None],
                                            [s for s, r in zip(scores, rows, strict=True) if r.first_error is not None],
                                            threshold)
    return out


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def render(results: dict) -> str:
    lines = [f"eval-prm {results['prm']} (adapter {results['adapter']}, threshold {results['threshold']:.3f}: "
             f"a step is wrong when its score <= it)"]
    for split, m in results.get("processbench", {}).items():
        lines.append(f"  ProcessBench {split}: F1 {_fmt(m['f1'])} (erroneous {_fmt(m['acc_erroneous'])}, correct "
                     f"{_fmt(m['acc_correct'])}), step AUC {_fmt(m['step_auc'])}; {m['rows']} rows, "
                     f"{m['unscored']} unscored")
    if "bon" in results:
        m = results["bon"]
        ci = m["best-of-N vs majority"]["ci95"]
        cw = m["weighted vote vs majority"]["ci95"]
        lines.append(f"  best-of-N ({m['problems']} problems, {m['solutions']} solutions): best-of-N "
                     f"{_fmt(m['best-of-N'])} [vs majority {ci[0]:+.3f}..{ci[1]:+.3f}], weighted vote "
                     f"{_fmt(m['weighted vote'])} [{cw[0]:+.3f}..{cw[1]:+.3f}], majority {_fmt(m['majority vote'])}, "
                     f"any-of-N {_fmt(m['any-of-N'])}, random {_fmt(m['random pick'])}")
        if "steps" in m:
            s = m["steps"]
            lines.append(f"    its steps: F1 {_fmt(s['f1'])}, step AUC {_fmt(s['step_auc'])}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 through the CLI's ConfigError path
        raise ConfigError(f"{message}")


DESCRIPTION = __doc__.split("\n")[0]


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="prmflow eval-prm", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return ap


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """eval-prm's options (the top-level ``prmflow --help`` and completion use them too)."""
    ap.add_argument("--prm", required=True, help="the PRM: a directory (or builtin:NAME); 'gold' for --adapter gold")
    ap.add_argument("--adapter", choices=ADAPTERS, default="auto",
                    help="how to read the PRM's step scores: auto (from the directory), prmflow, qwen-prm "
                         "(<extra_0> after each step, two-class head), math-shepherd (ки with +/- token logits), "
                         "likelihood (a causal LM's lowest token probability), gold (the dataset's labels: a check)")
    ap.add_argument("--processbench", default="gsm8k", help="comma-separated splits (gsm8k, math), or 'none'")
    ap.add_argument("--processbench-dir", default=DEFAULT_PROCESSBENCH,
                    help="the directory holding ProcessBench's gsm8k.json and math.json")
    ap.add_argument("--bon", default=None, help="a best-of-N candidate file (JSONL, optionally .gz)")
    ap.add_argument("--threshold", default="auto", help="'auto' (the PRM's own, else 0.5) or a number in [0, 1]")
    ap.add_argument("--limit", type=int, default=None, help="the first N rows of each split (N problems of --bon)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where the PRM runs (auto: cuda when available)")
    ap.add_argument("--batch-size", type=int, default=8, help="sequences scored per forward pass")
    ap.add_argument("--max-length", type=int, default=4096, help="longer sequences are counted unscored")
    ap.add_argument("--prompt-template", default="{prompt}\n", help="--adapter likelihood: text before the steps")
    ap.add_argument("--step-token", default="<extra_0>", help="--adapter qwen-prm: the tag after each step")
    ap.add_argument("--trust-remote-code", action="store_true", help="--adapter qwen-prm: load the model's own class")
    ap.add_argument("--tag", default="ки", help="--adapter math-shepherd: the step tag")
    ap.add_argument("--good-token", default="+", help="--adapter math-shepherd: the token whose logit means right")
    ap.add_argument("--bad-token", default="-", help="--adapter math-shepherd: the token whose logit means wrong")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")


def evaluate(args) -> dict:
    splits = [] if args.processbench in ("none", "") else [s.strip() for s in args.processbench.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"--processbench must name splits of {SPLITS} (or 'none'), got {bad[0]!r}")
    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--max-length", args.max_length)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if not splits and not args.bon:
        raise ConfigError("nothing to evaluate: give --processbench splits or --bon FILE")
    if args.threshold != "auto":
        try:
            fixed = float(args.threshold)
        except ValueError:
            fixed = -1.0
        if not 0.0 <= fixed <= 1.0:
            raise ConfigError(f"--threshold must be 'auto' or a number in [0, 1], got {args.threshold!r}")
    data = {split: load_processbench(args.processbench_dir, split, args.limit) for split in splits}
    bon_data = load_bon(args.bon, args.limit) if args.bon else None
    adapter = make_adapter(args)
    threshold = adapter.threshold if args.threshold == "auto" else float(args.threshold)
    results: dict = {"prm": args.prm, "adapter": adapter.name, "threshold": threshold,
                     "threshold_rule": "a step is erroneous when its score <= threshold; "
                                       + ("the PRM's own" if args.threshold == "auto" else "given")}
    if data:
        results["processbench"] = {split: processbench_metrics(rows, adapter.score_rows(rows), threshold)
                                   for split, rows in data.items()}
    if bon_data:
        ids, rows, records = bon_data
        results["bon"] = bon_metrics(ids, rows, records, adapter.score_rows(rows), threshold)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    results = evaluate(args)
    print(render(results), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
