"""Train the tiny ``arith`` policy shipped as ``builtin:arith-tiny`` (prmflow/models/arith-tiny).

Reproducible from a seed on 2 CPU cores in about a quarter of an hour::

    .venv/bin/python scripts/train_arith.py --out prmflow/models/arith-tiny --seed 0

What it does, and why:

* tokenizer: a byte-level BPE trained here with ``tokenizers`` on generated problems, with digits
  split one per token (so the model can learn column arithmetic instead of memorising numerals)
  and ``<s>``/``</s>``/``<pad>`` specials; ``<s>`` is prepended by the tokenizer's post-processor
  so every engine (transformers, vLLM) sees the same ids as training did;
* model: a ~1.1M-parameter ``LlamaForCausalLM`` (hidden 128, 4 layers, 4 heads, MLP 512, tied
  embeddings, 256 positions): small enough to train on a laptop CPU, big enough to follow the
  format almost always and to get most, but not all, answers right (the labeller needs mistakes);
* data: fresh problems every batch, ``generate_problems(batch_size, seed=train_seed + step)`` with
  ``train_seed >= 1000`` so evaluation seeds (``scripts/eval_arith.py`` uses 7) never overlap;
* loss on the solution tokens only (the prompt is masked), in the exact inference layout: the
  prompt is tokenised alone, as an engine does, and the solution plus ``</s>`` appended;
* AdamW, linear warmup then cosine decay to 10% of the peak rate, a fixed number of steps (results
  vary between seeds, so a run is judged by the evaluation script, not by early stopping).

torch and transformers are imported here only: the domain package stays pure Python.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from prmflow.domains.arith import format_prompt, generate_problems  # noqa: E402

SPECIAL_TOKENS = ("<s>", "</s>", "<pad>")
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2
MIN_TRAIN_SEED = 1000  # evaluation uses seeds below this; see scripts/eval_arith.py


def train_tokenizer(vocab_size: int, seed: int, n_problems: int = 20000) -> PreTrainedTokenizerFast:
    """Byte-level BPE over generated prompts and demonstrations, digits one per token."""
    problems = generate_problems(n_problems, seed=seed)
    corpus = [format_prompt(p) + p.demonstration for p in problems]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    if ids != [BOS_ID, EOS_ID, PAD_ID]:
        raise RuntimeError(f"special tokens got ids {ids}, expected {[BOS_ID, EOS_ID, PAD_ID]}")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", BOS_ID)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=256
    )


def build_model(vocab_size: int, args: argparse.Namespace) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.max_positions,
        tie_word_embeddings=True,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        rms_norm_eps=1e-5,
    )
    return LlamaForCausalLM(config)


def make_batch(backend: Tokenizer, problems: list, max_len: int) -> dict[str, torch.Tensor]:
    """Right-padded ids with labels only on the solution tokens (prompt and padding are -100).

    ``backend`` must be a private copy of the tokenizer: calling the transformers wrapper with
    ``padding=True`` (as generation does) switches padding on in its backend for good, which
    would silently pad prompts here.
    """
    prompts = backend.encode_batch([format_prompt(p) for p in problems], add_special_tokens=True)
    answers = backend.encode_batch([p.demonstration for p in problems], add_special_tokens=False)
    rows = []
    for p, prompt, answer in zip(problems, prompts, answers, strict=True):
        ids = prompt.ids + answer.ids + [EOS_ID]
        if len(ids) > max_len:
            raise ValueError(f"problem {p.problem_id} needs {len(ids)} tokens, more than {max_len} positions")
        rows.append((ids, len(prompt.ids)))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def quick_eval(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, n: int, seed: int) -> float:
    """Greedy final-answer accuracy on ``n`` held-out problems (a progress signal, not the card figure)."""
    from prmflow.domains.arith import check_solution

    model.eval()
    problems = generate_problems(n, seed=seed)
    tokenizer.padding_side = "left"
    enc = tokenizer([format_prompt(p) for p in problems], return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=96, do_sample=False, pad_token_id=PAD_ID, eos_token_id=EOS_ID)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    model.train()
    return sum(check_solution(p, t).answer_correct for p, t in zip(problems, texts, strict=True)) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("prmflow/models/arith-tiny"))
    ap.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    ap.add_argument("--train-seed", type=int, default=MIN_TRAIN_SEED, help="problem seeds are train_seed + step")
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--micro-batches", type=int, default=2, help="split each batch by length (same gradient)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--vocab-size", type=int, default=768)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--max-positions", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=0, help="greedy accuracy on 64 held-out problems every N steps")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop early after this wall time (0: never)")
    args = ap.parse_args(argv)
    if args.train_seed < MIN_TRAIN_SEED:
        raise SystemExit(f"--train-seed must be >= {MIN_TRAIN_SEED} so training never sees eval seeds, got {args.train_seed}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    started = time.time()
    tokenizer = train_tokenizer(args.vocab_size, seed=args.train_seed)  # batches use train_seed + 1 + step
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    model = build_model(len(tokenizer), args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"vocab {len(tokenizer)}, params {n_params:,}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    tokens_seen = 0
    log_loss, log_n = 0.0, 0
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        problems = generate_problems(args.batch_size, seed=args.train_seed + 1 + step)
        # Length-sorted micro-batches pad less (~18% faster on 2 cores); the loss is still the mean
        # over all solution tokens of the batch, as with one batch (num_items_in_batch).
        problems.sort(key=lambda p: len(p.prompt) + len(p.demonstration))
        size = math.ceil(len(problems) / args.micro_batches)
        batches = [make_batch(backend, problems[i : i + size], args.max_positions) for i in range(0, len(problems), size)]
        n_items = sum(int((b["labels"] != -100).sum()) for b in batches)
        opt.zero_grad(set_to_none=True)
        batch_loss = 0.0
        for batch in batches:
            loss = model(**batch, num_items_in_batch=n_items).loss
            loss.backward()
            batch_loss += loss.item()
            tokens_seen += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log_loss, log_n = log_loss + batch_loss, log_n + 1
        if (step + 1) % 25 == 0 or step == 0:
            elapsed = time.time() - started
            print(
                f"step {step + 1}/{args.steps} loss {log_loss / log_n:.4f} lr {lr_at(step, args):.2e} "
                f"tokens {tokens_seen:,} elapsed {elapsed / 60:.1f} min",
                flush=True,
            )
            log_loss, log_n = 0.0, 0
        if args.eval_every and (step + 1) % args.eval_every == 0:
            print(f"step {step + 1} greedy answer accuracy (64 problems, seed 7): {quick_eval(model, tokenizer, 64, 7):.3f}", flush=True)
        if args.max_minutes and time.time() - started > args.max_minutes * 60:
            print(f"stopping at step {step + 1}: --max-minutes {args.max_minutes} reached", flush=True)
            break

    elapsed = time.time() - started
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    # transformers 5 keeps specials in tokenizer_config.json only; older loaders read this file.
    special_map = args.out / "special_tokens_map.json"
    if not special_map.exists():
        special_map.write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}, indent=2) + "\n")
    meta = {
        "command": "python scripts/train_arith.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "steps_done": step + 1,
        "parameters": n_params,
        "training_tokens": tokens_seen,
        "wall_minutes": round(elapsed / 60, 2),
        "torch": torch.__version__,
    }
    (args.out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2), flush=True)


if __name__ == "__main__":
    main()
