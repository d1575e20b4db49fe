"""Train the tiny first-error judge shipped as ``builtin:arith-judge-tiny`` (prmflow/models/arith-judge-tiny).

Reproducible from seeds on 2 CPU cores::

    .venv/bin/python scripts/train_arith_judge.py --out prmflow/models/arith-judge-tiny --seed 0

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
  (``prmflow.judge.render_judge_prompt``, escaping included), and the target ``\\boxed{k}`` then
  ``</s>``;
* loss: on the target, plus (``--step-labels``, on by default) an auxiliary per-step signal inside
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
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prmflow.domains.arith import check_steps, format_prompt, generate_problems, split_steps  # noqa: E402

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


def format_target(first_error: int) -> str:
    return f"\\boxed{{{first_error}}}"


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


def make_batch(backend, rows: list[dict], template, max_len: int, step_labels: str = "none") -> dict:  # noqa: ANN001
    """Right-padded ids; labels on the target ``\\boxed{k}</s>``, and also on each paragraph's closing
    newline with ``step_labels`` ``local``: ``+`` (the step is right on its own) or ``-`` (it is
    wrong); ``running``: ``+`` while no step so far is wrong, then the first error's index digit."""
    import torch

    texts = [render_prompt(template, r["problem"], r["steps"]) for r in rows]
    prompts = backend.encode_batch(texts, add_special_tokens=True)
    targets = backend.encode_batch([format_target(r["first_error"]) for r in rows], add_special_tokens=False)
    verdict_ids = {True: backend.token_to_id("+"), False: backend.token_to_id("-")}
    seqs = []
    for row, text, prompt, target in zip(rows, texts, prompts, targets, strict=True):
        ids = prompt.ids + target.ids + [EOS_ID]
        if len(ids) > max_len:
            raise ValueError(f"{row['problem_id']} needs {len(ids)} tokens, more than {max_len} positions")
        aux = []
        if step_labels != "none":
            positions = step_label_positions(prompt, text, len(row["steps"]))
            if step_labels == "local":
                aux = [(pos, verdict_ids[ok]) for pos, ok in zip(positions, row["step_labels"], strict=True)]
            else:
                first = row["first_error"]
                aux = [
                    (pos, verdict_ids[True] if first < 0 or i < first else backend.token_to_id(str(first)))
                    for i, pos in enumerate(positions)
                ]
        seqs.append((ids, len(prompt.ids), aux))
    width = max(len(ids) for ids, _, _ in seqs)
    input_ids = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (ids, n_prompt, aux) in enumerate(seqs):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        # labels[j] is the token predicted at position j - 1 (the model shifts them).
        for pos, verdict in aux:
            labels[i, pos + 1] = verdict
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "n_prompts": [n for _, n, _ in seqs]}


def add_step_labels(rows: list[dict]) -> None:
    """Each row's local per-step truth (``check_steps(...).labels``), from its regenerated problem."""
    problems: dict[tuple[int, int], object] = {}
    for seed in {r["problem_seed"] for r in rows}:
        count = 1 + max(r["problem_index"] for r in rows if r["problem_seed"] == seed)
        problems.update({(seed, i): p for i, p in enumerate(generate_problems(count, seed=seed))})
    for r in rows:
        problem = problems[(r["problem_seed"], r["problem_index"])]
        assert problem.prompt == r["problem"], r["problem_id"]
        r["step_labels"] = check_steps(problem, r["steps"]).labels


def monitor_accuracy(model, backend, rows: list[dict], template, max_len: int) -> float:  # noqa: ANN001
    """Share of ``rows`` whose whole target greedy decoding would reproduce (teacher-forced argmax)."""
    import torch

    model.eval()
    hits = 0
    with torch.no_grad():
        for start in range(0, len(rows), 16):
            batch = make_batch(backend, rows[start : start + 16], template, max_len)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            predicted = logits[:, :-1].argmax(-1)
            labels = batch["labels"][:, 1:]
            hits += int(((predicted == labels) | (labels == -100)).all(-1).sum())
    model.train()
    return hits / len(rows)


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
        "--step-labels", choices=("none", "local", "running"), default="local",
        help="auxiliary loss at each paragraph's closing newline: local: + (right step) or - (wrong step); "
        "running: + while no step so far is wrong, then the first error's index",
    )
    ap.add_argument("--target-weight", type=float, default=1.0, help="loss weight of the answer tokens (step labels: 1)")
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
    ap.add_argument("--monitor-every", type=int, default=50, help="greedy accuracy on the held-out ones every N steps")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop early after this wall time (0: never)")
    args = ap.parse_args(argv)
    if args.train_seed < MIN_TRAIN_SEED:
        raise SystemExit(f"--train-seed must be >= {MIN_TRAIN_SEED} so training never sees eval seeds, got {args.train_seed}")

    started = time.time()
    rows = load_or_sample(args)
    if args.sample_only:
        return
    if args.step_labels == "local":
        add_step_labels(rows)
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
    data = balance([r for r in rows if r["problem_index"] < cut], args.correct_ratio, args.seed)
    positions = Counter(r["first_error"] for r in data)
    print(f"{len(rows)} sampled, {len(data)} training solutions; first errors {dict(sorted(positions.items()))}", flush=True)

    template = load_first_error_template()
    policy_dir = resolve(POLICY)
    corpus = [render_prompt(template, r["problem"], r["steps"]) for r in data[:4000]]
    protected = [] if args.init else [r["problem"] + "\n" + "\n".join(r["steps"]) for r in rows] + [
        format_prompt(p) + p.demonstration for p in generate_problems(5000, seed=MIN_TRAIN_SEED)
    ]  # the policy's own text keeps the policy's ids
    if args.init:  # a second stage: continue from a judge this script trained, tokenizer included
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.init)
        model = AutoModelForCausalLM.from_pretrained(args.init, dtype=torch.float32)
        old_vocab = len(tokenizer)
    else:
        tokenizer, composition = extend_tokenizer(policy_dir, corpus, protected, args.new_merges, args.max_positions)
        model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
        old_vocab = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            for new_id, pieces in composition.items():
                emb[new_id] = emb[pieces].mean(0)
        model.config.max_position_embeddings = args.max_positions
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    n_params = sum(p.numel() for p in model.parameters())
    lengths = [len(ids) for ids in (e.ids for e in backend.encode_batch(corpus[:500]))]
    print(
        f"vocab {old_vocab} -> {len(tokenizer)}, params {n_params:,}, prompt tokens mean "
        f"{sum(lengths) / len(lengths):.0f} max {max(lengths)}", flush=True,
    )  # fmt: skip

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
            make_batch(backend, batch_rows[i : i + size], template, args.max_positions, args.step_labels)
            for i in range(0, len(batch_rows), size)
        ]
        # Target tokens weigh --target-weight, step labels 1; the loss is the weighted mean over the batch.
        weights = []
        for b in batches:
            w = torch.where(b["labels"] >= 0, 1.0, 0.0)
            for i, n_prompt in enumerate(b["n_prompts"]):
                w[i, n_prompt:] *= args.target_weight
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
            acc = monitor_accuracy(model, backend, monitor, template, args.max_positions)
            print(f"step {step + 1} monitor first-error accuracy ({len(monitor)} held-out, balanced): {acc:.3f}", flush=True)
        if args.max_minutes and time.time() - train_started > args.max_minutes * 60:
            print(f"stopping at step {step + 1}: --max-minutes {args.max_minutes} reached", flush=True)
            break

    train_minutes = (time.time() - train_started) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
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
        "monitor_solutions": len(monitor),
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
