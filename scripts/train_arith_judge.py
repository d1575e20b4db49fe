"""Train the tiny first-error judge shipped as ``builtin:arith-judge-tiny`` (prmflow/models/arith-judge-tiny).

The shipped judge took two stages on 2 CPU cores (1 thread), the second continuing the first::

    .venv/bin/python scripts/train_arith_judge.py --out out/arith-judge-run7 --seed 0 --steps 850 --stop-step 300 \\
        --critique copy --step-labels none --correct-ratio 1.6 --synthetic-errors 0.7 \\
        --verdict-weight 2 --mismatch-weight 4 --monitor-every 50 --monitor-size 64
    .venv/bin/python scripts/train_arith_judge.py --init out/arith-judge-run7 --out out/arith-judge-run9 --seed 1 \\
        --steps 550 --warmup 10 --lr 7e-4 --critique copy --step-labels none --correct-ratio 1.6 \\
        --synthetic-errors 0.7 --verdict-weight 2 --mismatch-weight 2 --monitor-every 50 --monitor-size 64 --max-minutes 28

then copied into prmflow/models/arith-judge-tiny (docs/model-card-arith-judge-tiny.md has the
figures and the history). The defaults (``--critique none --step-labels local``) are the previous,
answer-only judge, which learnt only the label prior.

``--critique copy`` (shipped): before its ``\\boxed{k}`` the judge writes one line per paragraph,
``i: <the paragraph, copied> ; <a op b = its own recomputation> ok|wrong [kind]`` (for the final
``The answer is N`` line the check is the previous result), stopping at the first wrong one; the
target is written from the checker's labels (``format_target``). This turns "point at the earliest
wrong paragraph" into local, sequential sub-tasks: copy, recompute (the policy's own task), compare
two adjacent numbers, copy the index. ``--synthetic-errors`` adds correct solutions with one result
changed (so that recomputing, not copying the written result, is what the loss rewards);
``--verdict-weight`` and ``--mismatch-weight`` weigh the tokens that decide a line (its recomputed
result, verdict and the box; more in a line judged wrong). ``--critique verdict`` (``i: ok|wrong``
lines, read from in-prompt labels with ``--step-labels tag``) did not learn in the budget.

What it does, and why:

* data: real solutions, sampled from the shipped policy ``builtin:arith-tiny`` with vLLM at
  temperature 1 (so the errors are the policy's own), ``--samples-per-problem`` per problem on
  ``generate_problems(n, seed=--train-seed)`` with ``--train-seed >= 1000`` (the evaluation,
  ``scripts/eval_arith_judge.py``, uses seed 7). Each solution is split into steps by lines
  (``split_steps``, what the pipeline's ``segment: lines`` does) and labelled with the checker's
  exact first error (``check_steps``; -1: no wrong step). The policy is right ~82% of the time at
  T=1, so the set is balanced: every distinct erroneous solution is kept and as many correct ones
  (``--correct-ratio``), so each first-error position is seen hundreds of times;
* input/output: the ``first-error`` judge template (``prmflow/judge/templates/first-error.txt``,
  ProcessBench's critique prompt) rendered exactly as the pipeline renders it
  (``prmflow.judge.render_judge_prompt``, escaping included), and the target: the critique (if
  any), ``\\boxed{k}``, then ``</s>``;
* loss: on the target, plus (``--step-labels``, ``local`` by default) an auxiliary per-step signal inside
  the prompt: at the newline that ends each paragraph the model is trained to predict ``+`` if the
  step is right on its own (the checker's local label) and ``-`` if not. The prompt is given at
  inference, so this changes no output; it turns one 6-way label per solution into one binary
  label per step (a first run without it had only learnt the label prior after 75 steps: 49.7%
  on a balanced held-out set, where always -1 scores 50%). ``--init`` continues from a judge this
  script wrote (a second stage), ``--target-weight`` weighs the answer tokens against the step
  labels;
* model: warm-started from ``arith-tiny`` (same Llama shape, 4 layers, hidden 128): the judge has
  to notice a wrong ``a op b = c`` and the policy's weights already predict the right ``c``.
  Its tokenizer is extended with BPE merges learned here on the rendered judge prompts (the
  template's words would otherwise cost ~300 tokens as byte pieces); new token embeddings start as
  the mean of the pieces they merge. Digits stay one per token. RoPE has no position weights, so
  the context is simply raised to ``--max-positions``;
* AdamW, warmup then cosine decay to 10%, a fixed number of steps, no checkpoint selection.

The sampled set is cached (``--data``, JSONL); delete the file to resample.
torch and transformers are imported here only: the domain package stays pure Python.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prmflow.domains.arith import check_steps, format_prompt, generate_problems, parse_line, split_steps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POLICY = "builtin:arith-tiny"
MIN_TRAIN_SEED = 1000  # evaluation uses seeds below this; see scripts/eval_arith_judge.py
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2
VLLM_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


# ---------------------------------------------------------------------------------------------
# Prompt and answer format (shared with scripts/eval_arith_judge.py)


def resolve(model: str) -> str:
    from prmflow.models import resolve_model_path

    return resolve_model_path(model)


def load_first_error_template():  # noqa: ANN201
    """The pipeline's ``first-error`` template (a ``prmflow.judge.JudgeTemplate``)."""
    from prmflow.judge import load_template

    return load_template("first-error")


def render_prompt(template, problem: str, steps: list[str]) -> str:  # noqa: ANN001
    """The judge prompt exactly as the pipeline renders it (``render_judge_prompt``, escaping included)."""
    from prmflow.judge import render_judge_prompt
    from prmflow.schemas import Problem, Trajectory

    text = "\n".join(steps)
    row = Problem(problem_id="p", source="arith", domain="arith", prompt=problem)
    trajectory = Trajectory(
        trajectory_id="t", problem_id="p", source="arith", domain="arith", origin="sampled", text=text,
        steps=tuple(steps), step_spans=tuple((0, 0) for _ in steps), step_segments=tuple("response" for _ in steps),
    )  # fmt: skip
    return render_judge_prompt(template, row, trajectory)


CRITIQUE_SEP = " ; "


def format_number(x) -> str:  # noqa: ANN001
    """A checker value (``Fraction``) as the critique writes it: an integer, else a short decimal."""
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.2f}".rstrip("0").rstrip(".")


def critique_line(index: int, verdict, last_value: str | None) -> str:  # noqa: ANN001
    """One critique line: ``i: <the paragraph, copied> ; <the judge's own check> <verdict>``.

    The check is the equation recomputed (``a op b = <a op b>``, the policy's own task), for the
    final ``The answer is N`` line the previous equation's result, else ``-``. The verdict is the
    checker's: ``ok``, ``wrong`` (arithmetic: the two results differ) or ``wrong <error kind>``.
    """
    text = " ".join(verdict.text.replace("\\boxed", "boxed").split())
    eq = verdict.equation
    if eq is not None:
        value = "?" if eq.op == "/" and eq.right == 0 else format_number(_apply(eq.op, eq.left, eq.right))
        check = f"{format_number(eq.left)} {eq.op} {format_number(eq.right)} = {value}"
    elif verdict.role == "answer":
        check = last_value if last_value is not None else "?"
    else:
        check = "-"
    word = verdict_word(verdict)
    return f"{index}: {text}{CRITIQUE_SEP}{check} {word}"


def verdict_word(verdict) -> str:  # noqa: ANN001
    return "ok" if verdict.correct else "wrong" if verdict.error == "arithmetic" else f"wrong {verdict.error}"


def format_target(problem, steps: list[str], style: str = "verdict") -> tuple[str, int]:  # noqa: ANN001
    """The judge's whole answer for ``steps`` and the first error it names (-1: none).

    One critique line per paragraph, in order, up to and including the first wrong one, then
    ``\\boxed{k}``; the only ``\\boxed`` in the text is the last line's. ``style`` ``verdict``:
    ``i: ok``, ``i: wrong`` (arithmetic) or ``i: wrong <error kind>``; ``copy``: ``i: <the
    paragraph> ; <its recomputation> <verdict>`` (see ``critique_line``).
    """
    result = check_steps(problem, steps)
    if style == "none":  # the answer alone (no critique): the shipped judge's format up to run 5
        return f"\\boxed{{{result.first_error_index}}}", result.first_error_index
    lines, last_value = [], None
    for verdict in result.verdicts:
        if style == "verdict":
            lines.append(f"{verdict.index}: {verdict_word(verdict)}")
        else:
            lines.append(critique_line(verdict.index, verdict, last_value))
        if verdict.equation is not None:
            last_value = format_number(verdict.equation.result)
        if not verdict.correct:
            break
    first = result.first_error_index
    return "\n" + "\n".join(lines) + f"\n\\boxed{{{first}}}", first


def _apply(op: str, left, right):  # noqa: ANN001, ANN202
    """Exact ``left op right`` on ``Fraction`` values (``op`` one of ``+ - * /``, no zero divisor)."""
    return {"+": left + right, "-": left - right, "*": left * right}[op] if op != "/" else left / right


def parse_verdict(template, text: str, n_steps: int) -> int | None:  # noqa: ANN001
    """The judged first-error index, parsed as the pipeline parses a vote (``parse_vote``); None if unparsed."""
    from prmflow.judge import parse_vote

    vote = parse_vote(template, text, n_steps)
    return vote.first_error if vote.parsed else None


# ---------------------------------------------------------------------------------------------
# Sampling real solutions from the policy


def sample_solutions(
    problem_seed: int, n_problems: int, per_problem: int, engine_seed: int, max_tokens: int = 128
) -> list[dict]:
    """``per_problem`` temperature-1 solutions of ``builtin:arith-tiny`` per problem, each with its exact first error."""
    for key, value in VLLM_ENV.items():
        os.environ.setdefault(key, value)
    from vllm import LLM, SamplingParams

    problems = generate_problems(n_problems, seed=problem_seed)
    llm = LLM(
        model=resolve(POLICY), enforce_eager=True, kv_cache_memory_bytes=256 << 20, block_size=32,
        seed=engine_seed, dtype="float32",
    )  # fmt: skip
    # Engine seed only: per-request seeds crash vLLM 0.32 on CPU (see scripts/eval_arith.py).
    params = SamplingParams(temperature=1.0, max_tokens=max_tokens, n=per_problem)
    outputs = llm.generate([format_prompt(p) for p in problems], params, use_tqdm=False)
    rows = []
    for index, (problem, out) in enumerate(zip(problems, outputs, strict=True)):
        for sample, completion in enumerate(out.outputs):
            steps = split_steps(completion.text)
            if not steps:
                continue
            result = check_steps(problem, steps)
            rows.append({
                "problem_seed": problem_seed, "problem_index": index, "problem_id": problem.problem_id,
                "sample": sample, "problem": problem.prompt, "steps": steps,
                "first_error": result.first_error_index,
                "error_kind": result.first_error.error if result.first_error else None,
            })  # fmt: skip
    return rows


def balance(rows: list[dict], correct_ratio: float, seed: int) -> list[dict]:
    """Distinct solutions; all erroneous ones plus ``correct_ratio`` times as many correct ones."""
    seen, distinct = set(), []
    for row in rows:
        key = (row["problem"], tuple(row["steps"]))
        if key not in seen:
            seen.add(key)
            distinct.append(row)
    wrong = [r for r in distinct if r["first_error"] >= 0]
    right = [r for r in distinct if r["first_error"] < 0]
    rng = random.Random(seed)
    rng.shuffle(right)
    chosen = wrong + right[: int(round(correct_ratio * len(wrong)))]
    rng.shuffle(chosen)
    return chosen


def load_or_sample(args: argparse.Namespace) -> list[dict]:
    if args.data.exists():
        rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
        print(f"read {len(rows)} sampled solutions from {args.data}", flush=True)
        return rows
    started = time.time()
    rows = sample_solutions(args.train_seed, args.problems, args.samples_per_problem, args.sample_seed)
    args.data.parent.mkdir(parents=True, exist_ok=True)
    args.data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"sampled {len(rows)} solutions in {(time.time() - started) / 60:.1f} min -> {args.data}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# Tokenizer: arith-tiny's, plus merges for the judge prompt's words


def learn_merges(backend, texts: list[str], n_merges: int, protected: list[str]) -> list[tuple[str, str]]:  # noqa: ANN001
    """Greedy BPE merges continuing ``backend``'s model on ``texts`` (most frequent adjacent pair first).

    No merge joins a pair found in the segmentation of ``protected`` text (the policy's problems
    and solutions), so those keep exactly the ids the warm-started weights were trained on.
    """

    def pieces(text: str) -> list[str]:
        return [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text)]

    forbidden: set[tuple[str, str]] = set()
    for word in {w for text in protected for w in pieces(text)}:
        seg = [t.value for t in backend.model.tokenize(word)]
        forbidden.update(zip(seg, seg[1:], strict=False))
    words: Counter[str] = Counter(w for text in texts for w in pieces(text))
    # Current segmentation of each distinct pre-token under the existing merges.
    segs = {w: [t.value for t in backend.model.tokenize(w)] for w in words}
    vocab = backend.get_vocab()
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for w, seg in segs.items():
            for a, b in zip(seg, seg[1:], strict=False):
                if not (a.isdigit() or b.isdigit()) and (a, b) not in forbidden:
                    pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if count < 2:
            break
        merges.append((a, b))
        merged = a + b
        vocab.setdefault(merged, len(vocab))
        for w, seg in segs.items():
            out, i = [], 0
            while i < len(seg):
                if i + 1 < len(seg) and seg[i] == a and seg[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(seg[i])
                    i += 1
            segs[w] = out
    return merges


def extend_tokenizer(policy_dir: str, texts: list[str], protected: list[str], n_merges: int, max_positions: int):  # noqa: ANN201
    """arith-tiny's tokenizer with up to ``n_merges`` more merges; returns (tokenizer, {new id: piece ids})."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    base = Tokenizer.from_file(str(Path(policy_dir) / "tokenizer.json"))
    merges = learn_merges(base, texts, n_merges, protected)
    spec = json.loads(base.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    old_vocab = dict(vocab)
    composition: dict[int, list[int]] = {}
    for a, b in merges:
        merged = a + b
        if merged in vocab:
            continue
        new_id = max(max(vocab.values()), max(t["id"] for t in spec["added_tokens"])) + 1
        vocab[merged] = new_id
        # The old pieces the new token stands for (for the embedding's initial value).
        composition[new_id] = [t.id for t in base.model.tokenize(merged)]
    spec["model"]["merges"] = spec["model"]["merges"] + [[a, b] for a, b in merges]
    tok = Tokenizer.from_str(json.dumps(spec))
    assert all(old_vocab[k] == v for k, v in tok.get_vocab().items() if k in old_vocab)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=max_positions
    )
    return wrapped, composition


# ---------------------------------------------------------------------------------------------
# Training


def step_label_positions(encoding, prompt: str, n_steps: int) -> list[int]:  # noqa: ANN001
    """Token index of the newline that ends each paragraph's text (just before ``</paragraph_i>``)."""
    starts = {start: t for t, (start, end) in enumerate(encoding.offsets) if end > start}
    positions, cursor = [], 0
    for i in range(n_steps):
        at = prompt.index(f"\n</paragraph_{i}>", cursor)
        if at not in starts:
            raise ValueError(f"no token starts at the newline ending paragraph {i}")
        positions.append(starts[at])
        cursor = at + 1
    return positions


def make_batch(
    backend, rows: list[dict], template, max_len: int, step_labels: str = "none",  # noqa: ANN001
    verdict_weight: float = 1.0, mismatch_weight: float = 1.0, aux_weight: float = 1.0, solution_lm: float = 0.0,
) -> dict:  # fmt: skip
    """Right-padded ids; labels on the target (``row["target"]``: critique, ``\\boxed{k}``, ``</s>``),
    and also on each paragraph's closing newline with ``step_labels`` ``local``: ``+`` (the step is
    right on its own) or ``-`` (it is wrong); ``running``: ``+`` while no step so far is wrong, then
    the first error's index digit."""
    import torch

    texts = [render_prompt(template, r["problem"], r["steps"]) for r in rows]
    prompts = backend.encode_batch(texts, add_special_tokens=True)
    targets = backend.encode_batch([r["target"] for r in rows], add_special_tokens=False)
    verdict_ids = {True: backend.token_to_id("+"), False: backend.token_to_id("-")}
    seqs = []
    for row, text, prompt, target in zip(rows, texts, prompts, targets, strict=True):
        ids = prompt.ids + target.ids + [EOS_ID]
        if len(ids) > max_len:
            raise ValueError(f"{row['problem_id']} needs {len(ids)} tokens, more than {max_len} positions")
        aux = []
        positions = step_label_positions(prompt, text, len(row["steps"]))
        if step_labels != "none":
            if step_labels in ("local", "tag"):
                aux = [(pos, verdict_ids[ok]) for pos, ok in zip(positions, row["step_labels"], strict=True)]
            if step_labels == "tag":  # the closing tag's index digit: "\n", "</", "paragraph", "_", "i"
                for i, (pos, ok) in enumerate(zip(positions, row["step_labels"], strict=True)):
                    digits = "".join(backend.id_to_token(t) for t in prompt.ids[pos + 4 : pos + 4 + len(str(i))])
                    if digits != str(i):
                        raise ValueError(f"closing tag of paragraph {i} is not where expected: {digits!r}")
                    aux.append((pos + 3 + len(str(i)), verdict_ids[ok]))
            else:
                first = row["first_error"]
                aux = [
                    (pos, verdict_ids[True] if first < 0 or i < first else backend.token_to_id(str(first)))
                    for i, pos in enumerate(positions)
                ]
        spans = key_spans(row["target"])
        keys = [
            (len(prompt.ids) + j, next(w for a, b, w in spans if a <= start < b))
            for j, (start, end) in enumerate(target.offsets)
            if end > start and any(a <= start < b for a, b, _ in spans)
        ] + [(len(ids) - 1, False)]  # and </s>
        weights = [(k, verdict_weight * (mismatch_weight if m else 1.0)) for k, m in keys]
        weights += [(pos + 1, aux_weight) for pos, _ in aux]
        lm = []
        if solution_lm:  # next-token labels on the text of each right paragraph (not its closing newline)
            for i, ok in enumerate(row["step_labels"]):
                if not ok:
                    continue
                start = text.index(f"<paragraph_{i}>\n") + len(f"<paragraph_{i}>\n")
                end = positions[i]
                lm += [t for t in range(end) if prompt.offsets[t][0] >= start and prompt.offsets[t][1] > prompt.offsets[t][0]]
            weights += [(t, solution_lm) for t in lm]
        seqs.append((ids, len(prompt.ids), aux, weights, lm))
    width = max(len(ids) for ids, *_ in seqs)
    input_ids = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    key = torch.ones((len(seqs), width), dtype=torch.float32)
    for i, (ids, n_prompt, aux, keys, lm) in enumerate(seqs):
        for k, w in keys:
            key[i, k] = w
        for t in lm:
            labels[i, t] = ids[t]
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        # labels[j] is the token predicted at position j - 1 (the model shifts them).
        for pos, verdict in aux:
            labels[i, pos + 1] = verdict
        mask[i, : len(ids)] = 1
    n_prompts = [n for _, n, *_ in seqs]
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "n_prompts": n_prompts, "key": key}


def key_spans(target: str) -> list[tuple[int, int, bool]]:
    """Character spans of ``target`` that decide the verdict: each critique line's own result and
    verdict word (after the check's ``=``, else after the separator), and the ``\\boxed{k}`` line;
    each with whether it is a line judged ``wrong`` (whose copied result is a key span too)."""
    spans, at = [], 0
    for line in target.split("\n"):
        sep = line.rfind(CRITIQUE_SEP)
        if line.startswith("\\boxed"):
            spans.append((at, at + len(line), False))
        elif sep < 0 and re.match(r"\d+: ", line):  # the verdict style: "i: ok"
            start = line.index(": ") + 1  # the verdict word's token starts at its space
            spans.append((at + start, at + len(line), line[start:].startswith(" wrong")))
        elif sep >= 0:
            eq = line.find(" = ", sep)
            start = eq + 3 if eq >= 0 else sep + len(CRITIQUE_SEP)
            wrong = " wrong" in line[start:]
            spans.append((at + start, at + len(line), wrong))
            written = line.find(" = ")  # the paragraph's own result, copied (where the policy would compute)
            if wrong and 0 <= written < sep:
                spans.append((at + written + 3, at + sep, True))
        at += len(line) + 1
    return spans


def add_targets(rows: list[dict], style: str = "verdict") -> dict:
    """Each row's critique target and local per-step truth (``check_steps``), from its regenerated problem."""
    problems: dict[tuple[int, int], object] = {}
    for seed in {r["problem_seed"] for r in rows}:
        count = 1 + max(r["problem_index"] for r in rows if r["problem_seed"] == seed)
        problems.update({(seed, i): p for i, p in enumerate(generate_problems(count, seed=seed))})
    for r in rows:
        problem = problems[(r["problem_seed"], r["problem_index"])]
        assert problem.prompt == r["problem"], r["problem_id"]
        r["step_labels"] = check_steps(problem, r["steps"]).labels
        r["target"], first = format_target(problem, r["steps"], style)
        assert first == r["first_error"], r["problem_id"]
    return problems


RESULT = re.compile(r"(=\s*)(-?\d+)(\D*)$")
DELTAS = (1, 1, 1, 2, 2, 3, 4, 5, 9, 10, 10, 10, 11, 20, 100)


def corrupt(row: dict, problem, rng: random.Random, style: str = "verdict") -> dict | None:  # noqa: ANN001
    """A copy of a correct solution with one equation's result changed (the policy's kind of slip:
    off by 1, 2, 10, ...), its target made by the checker; None if no equation line can be changed."""
    candidates = [i for i, step in enumerate(row["steps"]) if RESULT.search(step) and parse_line(step)[0] == "equation"]
    rng.shuffle(candidates)
    for i in candidates:
        match = RESULT.search(row["steps"][i])
        value = int(match.group(2))
        new = value + rng.choice((-1, 1)) * rng.choice(DELTAS)
        if new < 0:
            new = value + abs(new - value)
        steps = list(row["steps"])
        steps[i] = steps[i][: match.start(2)] + str(new) + steps[i][match.end(2) :]
        target, first = format_target(problem, steps, style)
        if first == i:
            return {**row, "steps": steps, "target": target, "first_error": first, "error_kind": "arithmetic",
                    "synthetic": True, "step_labels": check_steps(problem, steps).labels}  # fmt: skip
    return None


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 32) -> list[str]:  # noqa: ANN001
    """Greedy continuations of ``prompts`` (transformers, left padding)."""
    import torch

    tokenizer.padding_side = "left"
    texts = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=PAD_ID, eos_token_id=EOS_ID
            )
            texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def monitor_accuracy(model, tokenizer, rows: list[dict], template, max_new_tokens: int) -> dict:  # noqa: ANN001
    """Greedy critiques of ``rows`` (balanced held-out solutions) scored as the evaluation scores them."""
    model.eval()
    texts = generate(model, tokenizer, [render_prompt(template, r["problem"], r["steps"]) for r in rows], max_new_tokens)
    model.train()
    pred = [parse_verdict(template, t, len(r["steps"])) for t, r in zip(texts, rows, strict=True)]
    gold = [r["first_error"] for r in rows]
    wrong = [i for i, g in enumerate(gold) if g >= 0]
    right = [i for i, g in enumerate(gold) if g < 0]
    acc_err = sum(pred[i] == gold[i] for i in wrong) / max(1, len(wrong))
    acc_ok = sum(pred[i] == -1 for i in right) / max(1, len(right))
    return {
        "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / len(rows),
        "accuracy_erroneous": acc_err,
        "accuracy_correct": acc_ok,
        "f1": 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok else 0.0,
        "critique_exact": sum(t.strip() == r["target"].strip() for t, r in zip(texts, rows, strict=True)) / len(rows),
        "invalid": sum(p is None for p in pred) / len(rows),
        "example": texts[wrong[0]] if wrong else texts[0],
    }


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("prmflow/models/arith-judge-tiny"))
    ap.add_argument("--data", type=Path, default=Path("out/arith-judge-data/train.jsonl"), help="sampled-solution cache")
    ap.add_argument("--seed", type=int, default=0, help="shuffling and balancing seed")
    ap.add_argument("--train-seed", type=int, default=5000, help="problem seed of the training solutions (>= 1000)")
    ap.add_argument("--problems", type=int, default=8000)
    ap.add_argument("--samples-per-problem", type=int, default=4)
    ap.add_argument("--sample-seed", type=int, default=0, help="vLLM engine seed for sampling")
    ap.add_argument("--correct-ratio", type=float, default=1.0, help="correct solutions kept per erroneous one")
    ap.add_argument("--sample-only", action="store_true", help="build the data cache and stop")
    ap.add_argument(
        "--step-labels", choices=("none", "local", "running", "tag"), default="local",
        help="auxiliary loss at each paragraph's closing newline: local: + (right step) or - (wrong step); "
        "running: + while no step so far is wrong, then the first error's index; tag: local, and also at "
        "the index digit of the closing </paragraph_i> tag (where an 'i: ' critique line can look it up)",
    )
    ap.add_argument(
        "--critique", choices=("none", "verdict", "copy"), default="none",
        help="what the judge writes before its \\boxed{k}: none; verdict: 'i: ok|wrong' per paragraph; "
        "copy: 'i: <paragraph> ; <recomputed> ok|wrong' per paragraph (see the model card for how each fared)",
    )
    ap.add_argument("--aux-weight", type=float, default=1.0, help="loss weight of the in-prompt step labels")
    ap.add_argument(
        "--solution-lm", type=float, default=0.0,
        help="loss weight of next-token prediction on the prompt's right paragraphs (keeps the policy's arithmetic)",
    )
    ap.add_argument("--target-weight", type=float, default=1.0, help="loss weight of the critique and answer tokens (step labels: 1)")
    ap.add_argument("--verdict-weight", type=float, default=1.0, help="loss weight of each critique line's own result and verdict tokens (others: 1)")
    ap.add_argument("--mismatch-weight", type=float, default=1.0, help="further factor on those tokens in a line judged wrong")
    ap.add_argument(
        "--synthetic-errors", type=float, default=0.0,
        help="corrupted copies per distinct correct training solution: one equation's result changed, "
        "labelled by the checker (so recomputing, not copying, is what the critique rewards)",
    )
    ap.add_argument("--init", type=Path, help="continue from this judge directory (a second stage) instead of arith-tiny")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--micro-batches", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--new-merges", type=int, default=200)
    ap.add_argument("--max-positions", type=int, default=768)
    ap.add_argument("--threads", type=int, default=1, help="1 is faster than 2 on a shared 2-core machine")
    ap.add_argument("--monitor-problems", type=int, default=300, help="problems held out for --monitor-every")
    ap.add_argument("--monitor-every", type=int, default=50, help="greedy critiques of held-out solutions every N steps")
    ap.add_argument("--monitor-size", type=int, default=64, help="held-out solutions judged by the monitor (balanced)")
    ap.add_argument("--monitor-tokens", type=int, default=192, help="max new tokens of the monitor's critiques")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop early after this wall time (0: never)")
    ap.add_argument("--stop-step", type=int, default=0, help="stop after this step; the schedule still spans --steps (0: never)")
    args = ap.parse_args(argv)
    if args.train_seed < MIN_TRAIN_SEED:
        raise SystemExit(f"--train-seed must be >= {MIN_TRAIN_SEED} so training never sees eval seeds, got {args.train_seed}")

    started = time.time()
    rows = load_or_sample(args)
    if args.sample_only:
        return
    problems = add_targets(rows, args.critique)
    sampling_minutes = (time.time() - started) / 60

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_started = time.time()
    # The last --monitor-problems problems are held out as a progress signal (not the card's figures).
    cut = args.problems - args.monitor_problems
    monitor = balance([r for r in rows if r["problem_index"] >= cut], 1.0, args.seed)
    monitor_set = [r for r in monitor if r["first_error"] >= 0][: args.monitor_size // 2]
    monitor_set += [r for r in monitor if r["first_error"] < 0][: args.monitor_size - len(monitor_set)]
    data = balance([r for r in rows if r["problem_index"] < cut], args.correct_ratio, args.seed)
    synthetic = []
    if args.synthetic_errors:
        corrupt_rng = random.Random(args.seed + 1)
        pool = balance([r for r in rows if r["problem_index"] < cut], 1e9, args.seed)
        pool = [r for r in pool if r["first_error"] < 0]
        for _ in range(math.ceil(args.synthetic_errors)):
            for r in pool:
                if corrupt_rng.random() < args.synthetic_errors / math.ceil(args.synthetic_errors):
                    bad = corrupt(r, problems[(r["problem_seed"], r["problem_index"])], corrupt_rng, args.critique)
                    if bad is not None:
                        synthetic.append(bad)
        data = data + synthetic
        random.Random(args.seed + 2).shuffle(data)
        print(f"{len(synthetic)} synthetic erroneous solutions (one result changed) added", flush=True)
    positions = Counter(r["first_error"] for r in data)
    print(f"{len(rows)} sampled, {len(data)} training solutions; first errors {dict(sorted(positions.items()))}", flush=True)

    template = load_first_error_template()
    policy_dir = resolve(POLICY)
    corpus = [render_prompt(template, r["problem"], r["steps"]) for r in data[:4000]]
    critiques = [r["target"] for r in data[:4000]]
    protected = [] if args.init else [r["problem"] + "\n" + "\n".join(r["steps"]) for r in rows] + [
        format_prompt(p) + p.demonstration for p in generate_problems(5000, seed=MIN_TRAIN_SEED)
    ]  # the policy's own text keeps the policy's ids
    if args.init:  # a second stage: continue from a judge this script trained, tokenizer included
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.init)
        model = AutoModelForCausalLM.from_pretrained(args.init, dtype=torch.float32)
        old_vocab = len(tokenizer)
    else:
        tokenizer, composition = extend_tokenizer(policy_dir, corpus + (critiques if args.critique != "none" else []), protected, args.new_merges, args.max_positions)
        model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
        old_vocab = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            for new_id, pieces in composition.items():
                emb[new_id] = emb[pieces].mean(0)
        model.config.max_position_embeddings = args.max_positions
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()  # make_batch pads itself; a padded prompt would put <pad> inside the sequence
    backend.no_truncation()
    n_params = sum(p.numel() for p in model.parameters())
    lengths = [len(ids) for ids in (e.ids for e in backend.encode_batch(corpus[:500]))]
    target_lengths = [len(ids) for ids in (e.ids for e in backend.encode_batch(critiques[:500], add_special_tokens=False))]
    print(
        f"vocab {old_vocab} -> {len(tokenizer)}, params {n_params:,}, prompt tokens mean "
        f"{sum(lengths) / len(lengths):.0f} max {max(lengths)}, critique tokens mean "
        f"{sum(target_lengths) / len(target_lengths):.0f} max {max(target_lengths)}", flush=True,
    )  # fmt: skip
    print("example target:" + data[0]["target"], flush=True)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    rng = random.Random(args.seed)
    order: list[int] = []
    tokens_seen, log_loss, log_n, epochs = 0, 0.0, 0, 0
    monitor_log: list[dict] = []
    step = -1
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        if len(order) < args.batch_size:
            fresh = list(range(len(data)))
            rng.shuffle(fresh)
            order += fresh
            epochs += 1
        batch_rows = [data[i] for i in order[: args.batch_size]]
        del order[: args.batch_size]
        batch_rows.sort(key=lambda r: len(r["problem"]) + sum(len(s) for s in r["steps"]))
        size = math.ceil(len(batch_rows) / args.micro_batches)
        batches = [
            make_batch(
                backend, batch_rows[i : i + size], template, args.max_positions, args.step_labels,
                args.verdict_weight, args.mismatch_weight, args.aux_weight, args.solution_lm,
            )  # fmt: skip
            for i in range(0, len(batch_rows), size)
        ]
        # Target tokens weigh --target-weight, step labels 1; the loss is the weighted mean over the batch.
        weights = []
        for b in batches:
            w = torch.where(b["labels"] >= 0, 1.0, 0.0)
            for i, n_prompt in enumerate(b["n_prompts"]):
                w[i, n_prompt:] *= args.target_weight
            w = w * b["key"]
            weights.append(w)
        total = float(sum(w.sum() for w in weights))
        opt.zero_grad(set_to_none=True)
        batch_loss = 0.0
        for batch, w in zip(batches, weights, strict=True):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            ce = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=-100, reduction="none"
            )
            loss = (ce * w[:, 1:].reshape(-1)).sum() / total
            loss.backward()
            batch_loss += loss.item()
            tokens_seen += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log_loss, log_n = log_loss + batch_loss, log_n + 1
        if (step + 1) % 25 == 0 or step == 0:
            elapsed = time.time() - train_started
            print(
                f"step {step + 1}/{args.steps} loss {log_loss / log_n:.4f} lr {lr_at(step, args):.2e} "
                f"epoch {epochs} tokens {tokens_seen:,} elapsed {elapsed / 60:.1f} min",
                flush=True,
            )
            log_loss, log_n = 0.0, 0
        if args.monitor_every and (step + 1) % args.monitor_every == 0:
            at = time.time()
            m = monitor_accuracy(model, tokenizer, monitor_set, template, args.monitor_tokens)
            print(
                f"step {step + 1} monitor ({len(monitor_set)} held-out, balanced, greedy): first-error accuracy "
                f"{m['accuracy']:.3f} (erroneous {m['accuracy_erroneous']:.3f}, correct {m['accuracy_correct']:.3f}, "
                f"F1 {m['f1']:.3f}), critique exact {m['critique_exact']:.3f}, invalid {m['invalid']:.3f} "
                f"[{time.time() - at:.0f} s]\n  e.g. {m['example']!r}", flush=True,
            )  # fmt: skip
            monitor_log.append({"step": step + 1, **{k: v for k, v in m.items() if k != "example"}})
            args.out.mkdir(parents=True, exist_ok=True)  # a checkpoint, overwritten by the final save
            model.save_pretrained(args.out, safe_serialization=True)
            tokenizer.backend_tokenizer.no_padding()  # the monitor's padded calls must not be saved
            tokenizer.save_pretrained(args.out)
        if args.stop_step and step + 1 >= args.stop_step:
            print(f"stopping at step {step + 1}: --stop-step", flush=True)
            break
        if args.max_minutes and time.time() - train_started > args.max_minutes * 60:
            print(f"stopping at step {step + 1}: --max-minutes {args.max_minutes} reached", flush=True)
            break

    train_minutes = (time.time() - train_started) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.save_pretrained(args.out)
    special_map = args.out / "special_tokens_map.json"
    if not special_map.exists():
        special_map.write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}, indent=2) + "\n")
    meta = {
        "command": "python scripts/train_arith_judge.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "warm_start": POLICY,
        "sampled_solutions": len(rows),
        "training_solutions": len(data),
        "synthetic_solutions": len(synthetic),
        "monitor_solutions": len(monitor_set),
        "monitor": monitor_log,
        "critique_format": "one line per paragraph up to the first wrong one: 'i: <paragraph> ; <a op b = recomputed"
        " | previous result for the answer line | -> ok|wrong [kind]', then '\\boxed{k}'",
        "training_first_errors": {str(k): v for k, v in sorted(positions.items())},
        "steps_done": step + 1,
        "epochs_started": epochs,
        "parameters": n_params,
        "vocab_size": len(tokenizer),
        "training_tokens": tokens_seen,
        "sampling_minutes": round(sampling_minutes, 2),
        "wall_minutes": round(train_minutes, 2),
        "torch": torch.__version__,
    }
    (args.out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2), flush=True)


if __name__ == "__main__":
    main()
