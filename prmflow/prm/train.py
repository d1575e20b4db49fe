"""``prmflow train-prm``: a compact PRM trainer for prmflow's weighted soft labels.

Not a general trainer: a token-classification body with one logit (:mod:`prmflow.prm.model`), read
at each step's last token, trained by AdamW on ``sum(w * BCE) / sum(w)`` against soft or hard targets
with per-step weights. TRL 1.14 removed its PRM trainer, and the last one (1.13) casts labels with
``int()`` and has no weights, so no maintained trainer consumes soft labels and consistency weights.

Each epoch ends with validation: the weighted loss, step accuracy and ProcessBench-style first-error
F1 against the validation targets binarised at 0.5 (exact when they are hard or gold labels). The
result is ``OUTPUT/model/`` (transformers, with its tokenizer) and ``OUTPUT/prm.json`` (the step format,
the scoring rule, the config, the per-epoch metrics, the weights' sha256), written into a staging
directory and renamed into place, so a failed run leaves no half-saved PRM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from prmflow.core.publish import replace_dir
from prmflow.core.section import ConfigError
from prmflow.models import resolve_model_path
from prmflow.prm import data as prm_data
from prmflow.prm.config import PRM_FORMAT, PRM_FORMAT_VERSION, PRM_JSON, PRMTrainConfig
from prmflow.prm.encoding import Encoded, StepFormat, encode_many
from prmflow.prm.metrics import step_metrics
from prmflow.prm.model import (
    autocast_dtype,
    collate,
    load_model,
    load_tokenizer,
    resolve_device,
    step_logits,
    weighted_bce,
)
from prmflow.safeio import check_out_dir

log = logging.getLogger("prmflow")


@dataclass(frozen=True)
class TrainResult:
    output: str
    history: list[dict]
    """One dict per epoch: train loss, validation metrics."""
    train_trajectories: int
    validation_trajectories: int
    skipped_steps: int
    """Labeled steps left out because they ended beyond max_length."""
    seconds: float
    steps: int
    """Optimiser steps taken (batches x epochs)."""
    step_seconds: float
    """Seconds inside the optimiser steps alone (batching, forward, backward, update): no loading,
    encoding, validation or saving, so steps / step_seconds is the training throughput."""


@dataclass(frozen=True)
class _Item:
    encoded: Encoded
    targets: tuple[float | None, ...]
    weights: tuple[float, ...]


def _split(config: PRMTrainConfig) -> tuple[list[prm_data.Example], list[prm_data.Example]]:
    train = prm_data.load(config.train_paths, "train", config.label_column, config.use_weights)
    if not train:
        raise ConfigError(f"train_prm.data holds no training rows: {list(config.train_paths)}")
    if config.validation_paths:
        val = prm_data.load(config.validation_paths, "validation", config.label_column, config.use_weights)
    elif config.val_fraction > 0:
        keep = [prm_data.held_out(e.problem_id, config.val_fraction, config.seed) for e in train]
        val = [e for e, k in zip(train, keep, strict=True) if k]
        train = [e for e, k in zip(train, keep, strict=True) if not k]
    else:  # export directories carry their own problem-disjoint validation split
        dirs = [p for p in config.train_paths if Path(p).is_dir()]
        val = prm_data.load(dirs, "validation", config.label_column, config.use_weights)
    if not train:
        raise ConfigError("train_prm.val_fraction leaves no training rows")
    return train, val


def _encode(tokenizer, fmt: StepFormat, examples: Sequence[prm_data.Example], max_length: int) -> list[_Item]:
    encoded = encode_many(tokenizer, fmt, [(e.prompt, e.steps) for e in examples], max_length)
    return [_Item(enc, e.targets, e.weights) for enc, e in zip(encoded, examples, strict=True)]


def _targets(items: Sequence[_Item], index: list[list[int | None]], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = sum(1 for where in index for w in where if w is not None)
    targets = torch.zeros(n)
    weights = torch.zeros(n)
    for item, where in zip(items, index, strict=True):
        for k, w in enumerate(where):
            if w is not None and item.targets[k] is not None:
                targets[w] = item.targets[k]
                weights[w] = item.weights[k]
    return targets.to(device), weights.to(device)


def _progress(total: int, every: int) -> Callable[[float], None] | None:
    """A progress callback taking the last loss: tqdm when installed, else a log line every N steps."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, desc="train-prm", unit="step", mininterval=1.0, file=sys.stderr)

        def tick(loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if bar.n >= total:
                bar.close()
        return tick
    done = [0]

    def line(loss: float) -> None:
        done[0] += 1
        if done[0] % every == 0 or done[0] == total:
            log.info("train-prm: step %d/%d loss %.4f", done[0], total, loss)
    return line


@torch.no_grad()
def evaluate(model, items: Sequence[_Item], pad_id: int, device: str, amp, batch_size: int) -> dict:
    """Weighted loss, step accuracy and first-error F1 of the model on ``items``."""
    model.eval()
    loss_sum = weight_sum = 0.0
    pairs = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch, index = collate([it.encoded for it in chunk], pad_id, device)
        logits = step_logits(model, batch, amp)
        targets, weights = _targets(chunk, index, device)
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        loss_sum += float((per * weights).sum())
        weight_sum += float(weights.sum())
        probs = torch.sigmoid(logits).tolist()
        for it, where in zip(chunk, index, strict=True):
            pairs.append(([None if w is None else probs[w] for w in where], list(it.targets)))
    metrics = step_metrics(pairs)
    return {"loss": loss_sum / weight_sum if weight_sum else None, **metrics.to_dict()}


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _sha256(directory: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _prepare_output(config: PRMTrainConfig) -> Path:
    """The output directory, refused when it is (or holds, or is inside) the training data, or holds
    files train-prm did not write (``prmflow.safeio``)."""
    data = [(p, "the training data") for p in (*config.train_paths, *config.validation_paths)]
    return check_out_dir(config.output, option="train_prm.output", overwrite=config.overwrite, marker=PRM_JSON,
                         protected=data)


def _check_can_save(config: PRMTrainConfig, out: Path, base: str) -> None:
    """Before any training: the output's parent takes a file (writable, not full) and has room for
    at least the base model's weights, so hours of training never end in a model that cannot be saved."""
    probe = out.parent / f".{out.name}.train-prm-{os.getpid()}"  # where _save stages the model
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.mkdir(exist_ok=True)
        with open(probe / "probe", "wb") as f:
            f.write(b"\0" * (1 << 16))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ConfigError(f"train_prm.output {config.output!r} cannot be written ({e.strerror or e}); nothing "
                          f"was trained") from None
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    need = sum(f.stat().st_size for f in Path(base).iterdir() if f.suffix in (".safetensors", ".bin"))
    free = shutil.disk_usage(out.parent).free
    if free < need:
        raise ConfigError(f"train_prm.output {config.output!r}: saving the model needs at least {need >> 20} MiB, "
                          f"{free >> 20} MiB are free there; nothing was trained")


def train(config: PRMTrainConfig, progress: bool = True) -> TrainResult:
    """Train a PRM as ``config`` says and save it; returns the per-epoch history."""
    started = time.monotonic()
    out = _prepare_output(config)
    base = resolve_model_path(config.base_model)
    if not (Path(base) / "config.json").is_file():
        raise ConfigError(f"train_prm.base_model must be a local model directory (with config.json) or "
                          f"builtin:NAME; nothing is downloaded, got {config.base_model!r}")
    _check_can_save(config, out, base)
    train_ex, val_ex = _split(config)
    device = resolve_device(config.device)
    amp = autocast_dtype(config.dtype, device)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(base)
    fmt = config.step_format
    if not tokenizer(config.separator, add_special_tokens=False)["input_ids"]:
        raise ConfigError(f"train_prm.separator {config.separator!r} has no token in this tokenizer; pick another")
    model = load_model(base, new_head=True).to(device)
    pad_id = tokenizer.pad_token_id
    train_items = _encode(tokenizer, fmt, train_ex, config.max_length)
    val_items = _encode(tokenizer, fmt, val_ex, config.max_length)
    skipped = sum(1 for it in train_items for p, t in zip(it.encoded.positions, it.targets, strict=True)
                  if p is None and t is not None)
    if skipped:
        log.warning("train-prm: %d labeled steps end beyond max_length = %d and are left out", skipped,
                    config.max_length)

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(train_items) / config.batch_size)
    total = per_epoch * config.epochs
    warmup = max(1, int(config.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, total, warmup))
    tick = _progress(total, config.log_every) if progress else None
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    step_seconds = 0.0
    log.info("train-prm: %d training and %d validation trajectories, %d epochs of %d steps on %s%s",
             len(train_items), len(val_items), config.epochs, per_epoch, device, " (bf16 autocast)" if amp else "")
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_items), generator=generator).tolist()
        losses = []
        epoch_started = time.monotonic()  # .item() below syncs every step, so this times the GPU too
        for start in range(0, len(order), config.batch_size):
            chunk = [train_items[i] for i in order[start : start + config.batch_size]]
            batch, index = collate([it.encoded for it in chunk], pad_id, device)
            targets, weights = _targets(chunk, index, device)
            loss = weighted_bce(step_logits(model, batch, amp), targets, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach().item())
            if tick is not None:
                tick(losses[-1])
        step_seconds += time.monotonic() - epoch_started
        record = {"epoch": epoch + 1, "train_loss": sum(losses) / len(losses)}
        if val_items:
            record["validation"] = evaluate(model, val_items, pad_id, device, amp, config.batch_size)
        history.append(record)
        log.info("train-prm: epoch %d %s", epoch + 1, json.dumps(record))

    _save(model, tokenizer, config, out, history, len(train_items), len(val_items))
    return TrainResult(str(out), history, len(train_items), len(val_items), skipped, time.monotonic() - started,
                       total, step_seconds)


def _save(model, tokenizer, config: PRMTrainConfig, out: Path, history: list[dict], n_train: int,
          n_val: int) -> None:
    staging = out.parent / f".{out.name}.train-prm-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "model").mkdir(parents=True)
    try:
        model.to("cpu").save_pretrained(staging / "model")
        tokenizer.save_pretrained(staging / "model")
        meta = {
            "format": PRM_FORMAT,
            "format_version": PRM_FORMAT_VERSION,
            "head": "single-logit",
            "score": "sigmoid of the head's logit at the last token of each step followed by the separator",
            "step_format": config.step_format.to_json(),
            "max_length": config.max_length,
            "base_model": config.base_model,
            "loss": "sum(w * BCE) / sum(w) (MetaStone-S1)",
            "config": dataclasses.asdict(config),
            "train_trajectories": n_train,
            "validation_trajectories": n_val,
            "history": history,
            "weights_sha256": _sha256(staging / "model"),
        }
        (staging / PRM_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary(result: TrainResult) -> str:
    last = result.history[-1]
    val = last.get("validation") or {}

    def fmt(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    return (f"saved {result.output}: {result.train_trajectories} training trajectories, {len(result.history)} "
            f"epochs in {result.seconds:.0f} s; last train loss {last['train_loss']:.4f}; validation "
            f"({result.validation_trajectories} trajectories) loss {fmt(val.get('loss'))}, step accuracy "
            f"{fmt(val.get('step_accuracy'))}, ProcessBench F1 {fmt(val.get('processbench_f1'))}")


DESCRIPTION = """Train a PRM on a `prmflow export --format prmflow` export (soft labels, consistency weights);
saves OUT/model and OUT/prm.json. The YAML config's keys: prmflow/prm/config.py (PRMTrainConfig)."""


def add_arguments(parser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="the training config (data, base model, out, ...)")


def main(argv: list[str]) -> int:
    """``prmflow train-prm CONFIG.yaml``; config errors raise ConfigError (the CLI exits 2)."""
    from prmflow.core.cliparse import parser
    from prmflow.prm.config import load_train_config

    ns = parser("prmflow train-prm", DESCRIPTION, add_arguments).parse_args(argv)
    try:
        result = train(load_train_config(ns.config))
    except OSError as e:
        if isinstance(e, (FileNotFoundError, FileExistsError)):
            raise  # the CLI's exit 2 (a config naming a missing file, a refused output)
        print(f"prmflow train-prm: {e}", file=sys.stderr)  # a full disk while saving: one line
        return 1
    print(summary(result), flush=True)
    return 0
