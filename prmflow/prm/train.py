"""``prmflow train-prm``: a PRM trainer for prmflow's weighted soft labels, on ``transformers.Trainer``.

A causal LM's body with a step head (:mod:`prmflow.prm.model`: ``logprob``, ``reward-token`` or
``value``), read at each step's last token, trained on ``sum(w * BCE) / sum(w)`` against soft or hard
targets with per-step weights (a custom ``compute_loss``). TRL 1.14 removed its PRM trainer, and the
last one (1.13) casts labels with ``int()`` and has no weights, so no maintained trainer consumes soft
labels and consistency weights; ``transformers.Trainer`` brings what a trainer must have: gradient
accumulation (``micro_batch_size``), bf16, multi-GPU through accelerate (``accelerate launch -m
prmflow train-prm CONFIG.yaml``), checkpoints and resume.

The body and the head have their own learning rates (``lr`` 1e-5, ``head_lr`` 3e-3: the body stays
near the base LM, whose log-probabilities the logprob head reads); the head starts at the base rate.
Validation (a problem-disjoint split, :func:`_split`) runs every ``eval_steps`` or epoch and
checkpoints with it; the saved PRM is the checkpoint with the best validation step AUC, and its
validation scores choose the threshold of ProcessBench F1 (saved as ``threshold`` in prm.json).

Checkpoints go to ``checkpoint_dir`` (``OUTPUT.checkpoints``) beside a ``run.json`` with the config's
digest; a killed run started again with the same config resumes from its last complete checkpoint
(model, optimiser, scheduler, RNG states, data order) and ends with the same weights and metrics.
The result is ``OUTPUT/model/`` (transformers, with its tokenizer, and ``head.safetensors``) and
``OUTPUT/prm.json``, written into a staging directory and renamed into place, so a failed run
leaves no half-saved PRM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from prmflow.core.publish import replace_dir
from prmflow.core.section import ConfigError
from prmflow.models import resolve_model_path
from prmflow.prm import data as prm_data
from prmflow.prm.config import PRM_FORMAT, PRM_FORMAT_VERSION, PRM_JSON, PRMTrainConfig
from prmflow.prm.encoding import Encoded, StepFormat, encode_many
from prmflow.prm.metrics import THRESHOLD, best_threshold, step_metrics
from prmflow.prm.model import (
    FEATURES,
    LOGPROB_SCALE,
    PRMModel,
    autocast_dtype,
    collate,
    feature_stats,
    load_causal_lm,
    load_tokenizer,
    resolve_device,
    reward_token_ids,
    save_prm_model,
    step_logits,
    weighted_bce,
)
from prmflow.safeio import check_out_dir

log = logging.getLogger("prmflow")
RUN_JSON = "run.json"
# fields that do not change what is trained: a resumed run may differ in these
_OPERATIONAL = ("output", "checkpoint_dir", "resume", "keep_checkpoints", "overwrite", "log_every", "device",
                "save_total_limit")


@dataclass(frozen=True)
class TrainResult:
    output: str
    history: list[dict]
    """One dict per validation: step, epoch, mean train loss since the last one, validation metrics."""
    train_trajectories: int
    validation_trajectories: int
    skipped_steps: int
    """Labeled steps left out because they ended beyond max_length."""
    seconds: float
    steps: int
    """Optimiser steps taken."""
    step_seconds: float
    """Seconds inside the optimiser steps alone (batching, forward, backward, update) in this process:
    no loading, encoding, validation or saving, so steps / step_seconds is the training throughput."""
    validation: dict | None = None
    """The saved (best) checkpoint's validation metrics, at ``threshold``."""
    threshold: float = THRESHOLD
    resumed_from: str | None = None


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
    shared = {e.problem_id for e in train} & {e.problem_id for e in val}
    if shared:  # a validation AUC over problems the PRM trained on would choose the most memorised checkpoint
        raise ConfigError(f"train_prm.validation shares {len(shared)} problems with the training data "
                          f"(e.g. {sorted(shared)[0]!r}); give a problem-disjoint validation split")
    return train, val


def _encode(tokenizer, fmt: StepFormat, examples: Sequence[prm_data.Example], max_length: int) -> list[_Item]:
    encoded = encode_many(tokenizer, fmt, [(e.prompt, e.steps) for e in examples], max_length)
    return [_Item(enc, e.targets, e.weights) for enc, e in zip(encoded, examples, strict=True)]


def _targets(items: Sequence[_Item], index: list[list[int | None]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = sum(1 for where in index for w in where if w is not None)
    targets = torch.zeros(n)
    weights = torch.zeros(n)
    for item, where in zip(items, index, strict=True):
        for k, w in enumerate(where):
            if w is not None and item.targets[k] is not None:
                targets[w] = item.targets[k]
                weights[w] = item.weights[k]
    return targets, weights


class _Collator:
    """Trajectories -> the model's tensors plus ``targets`` and ``weights`` (one per scored step)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[_Item]) -> dict[str, torch.Tensor]:
        batch, index = collate([it.encoded for it in items], self.pad_id, None)
        targets, weights = _targets(items, index)
        return {**batch.as_inputs(), "targets": targets, "weights": weights}


class _Items(torch.utils.data.Dataset):
    def __init__(self, items: Sequence[_Item]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _Item:
        return self.items[i]


@torch.no_grad()
def score_items(model, items: Sequence[_Item], pad_id: int, device, amp, batch_size: int
                ) -> tuple[list[list[float | None]], float | None]:
    """Per item, its step scores; and the weighted validation loss over all labeled steps."""
    was_training = model.training
    model.eval()
    loss_sum = weight_sum = 0.0
    out: list[list[float | None]] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch, index = collate([it.encoded for it in chunk], pad_id, device)
        logits = step_logits(model, batch, amp)
        targets, weights = (t.to(logits.device) for t in _targets(chunk, index))
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        loss_sum += float((per * weights).sum())
        weight_sum += float(weights.sum())
        probs = torch.sigmoid(logits).tolist()
        out.extend([None if w is None else probs[w] for w in where] for where in index)
    model.train(was_training)
    return out, (loss_sum / weight_sum if weight_sum else None)


def evaluate(model, items: Sequence[_Item], pad_id: int, device, amp, batch_size: int,
             threshold: float = THRESHOLD, reference: float = THRESHOLD) -> dict:
    """Weighted loss, step AUC, step accuracy and first-error F1 of the model on ``items`` (targets above
    ``reference`` are correct steps)."""
    scores, loss = score_items(model, items, pad_id, device, amp, batch_size)
    metrics = step_metrics(list(zip(scores, (it.targets for it in items), strict=True)), threshold, reference)
    return {"loss": loss, **metrics.to_dict()}


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


def config_digest(config: PRMTrainConfig) -> str:
    """What a checkpoint directory was trained for: every field that changes the weights."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _OPERATIONAL}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def last_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint (Trainer writes ``trainer_state.json`` last): a checkpoint a kill
    interrupted mid-write is skipped."""
    done = [p for p in directory.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _checkpoints(config: PRMTrainConfig) -> tuple[Path, Path | None]:
    """The checkpoint directory, and the checkpoint to resume from (None: start afresh)."""
    ckpt = Path(config.checkpoints)
    digest = config_digest(config)
    run_json = ckpt / RUN_JSON
    if ckpt.is_dir() and any(ckpt.iterdir()):
        try:
            seen = json.loads(run_json.read_text(encoding="utf-8")).get("config_digest")
        except (OSError, ValueError):
            seen = None
        if seen != digest and config.resume and not config.overwrite:
            raise ConfigError(f"train_prm.checkpoint_dir {str(ckpt)!r} holds checkpoints of another config; "
                              f"remove it, or set overwrite: true (or resume: false) to start afresh")
        if seen != digest or not config.resume:
            shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    run_json.write_text(json.dumps({"config_digest": digest, "config": dataclasses.asdict(config)}, indent=2,
                                   default=str) + "\n", encoding="utf-8")
    return ckpt, (last_checkpoint(ckpt) if config.resume else None)


def _check_lora(config: PRMTrainConfig) -> None:
    if config.lora_r <= 0:
        return
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ConfigError(f"train_prm.lora_r is {config.lora_r} but peft is not installed; "
                          f"pip install peft, or set lora_r: 0") from None


def _wrap_lora(lm, config: PRMTrainConfig):
    if config.lora_r <= 0:
        return lm
    from peft import LoraConfig, get_peft_model

    return get_peft_model(lm, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                         target_modules="all-linear", exclude_modules=["lm_head"]))


def _make_trainer(config, model, train_items, val_items, pad_id, device, amp, ckpt: Path, clock, progress: bool,
                  callbacks: Sequence = ()):
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    class PRMTrainer(Trainer):
        """Weighted soft BCE, a body and a head learning rate, and prmflow's own validation."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            targets, weights = inputs.pop("targets"), inputs.pop("weights")
            logits = model(**inputs)
            loss = weighted_bce(logits, targets, weights)
            return (loss, logits) if return_outputs else loss

        def create_optimizer(self, model=None):
            if self.optimizer is None:
                m = self.model if model is None else model
                head = {id(p) for p in m.head_parameters()}
                body = [p for p in m.parameters() if p.requires_grad and id(p) not in head]
                groups = [{"params": body, "lr": config.lr, "weight_decay": config.weight_decay},
                          {"params": m.head_parameters(), "lr": config.head_lr, "weight_decay": 0.0}]
                self.optimizer = torch.optim.AdamW(groups, lr=config.lr)
            return self.optimizer

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            metrics = evaluate(self.model, val_items, pad_id, self.args.device, amp, config.batch_size,
                               reference=config.reference_threshold)
            auc, loss = metrics["step_auc"], metrics["loss"]
            out = {f"{metric_key_prefix}_{k}": float(v) for k, v in metrics.items() if v is not None}
            # the checkpoint's selection key: the step AUC, less 1e-4 x the loss so that equal AUCs go to the
            # lower loss (Trainer keeps the earliest of equal keys); -loss where validation has no first error
            out[f"{metric_key_prefix}_selection"] = (auc - 1e-4 * (loss or 0.0)) if auc is not None else -(loss or 0.0)
            self.log(out)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, out)
            return out

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock["started"] = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            clock["seconds"] += time.monotonic() - clock.pop("started", time.monotonic())

    validate = bool(val_items)
    strategy = "steps" if config.eval_steps else "epoch"
    extra = {"use_cpu": True} if device == "cpu" else {}
    args = TrainingArguments(
        output_dir=str(ckpt), per_device_train_batch_size=config.micro_batch_size or config.batch_size,
        gradient_accumulation_steps=config.accumulation, num_train_epochs=config.epochs,
        learning_rate=config.lr, weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear", max_grad_norm=1.0, seed=config.seed, data_seed=config.seed,
        bf16=amp is torch.bfloat16, eval_strategy=strategy if validate else "no", save_strategy=strategy,
        eval_steps=config.eval_steps or None, save_steps=config.eval_steps or None,
        save_total_limit=config.save_total_limit, load_best_model_at_end=validate,
        metric_for_best_model="selection" if validate else None, greater_is_better=True,
        logging_steps=config.log_every, report_to=[], remove_unused_columns=False, dataloader_num_workers=0,
        disable_tqdm=not progress, **extra,
    )
    trainer = PRMTrainer(model=model, args=args, train_dataset=_Items(train_items),
                         eval_dataset=_Items(val_items) if validate else None,
                         data_collator=_Collator(pad_id), callbacks=[Clock(), *callbacks])
    if not progress:
        trainer.remove_callback(PrinterCallback)
    trainer.model_accepts_loss_kwargs = False  # the loss is a per-micro-batch mean: Trainer scales it for accumulation
    return trainer


def _history(log_history: list[dict]) -> list[dict]:
    """One record per validation, with the mean of the train losses logged since the previous one."""
    out, losses = [], []
    for entry in log_history:
        if "loss" in entry:
            losses.append(entry["loss"])
        if "eval_selection" in entry:
            val = {k[5:]: v for k, v in entry.items() if k.startswith("eval_") and k != "eval_selection"}
            out.append({"step": entry.get("step"), "epoch": entry.get("epoch"),
                        "train_loss": sum(losses) / len(losses) if losses else None, "validation": val})
            losses = []
    if losses or not out:
        out.append({"step": log_history[-1].get("step") if log_history else None,
                    "epoch": log_history[-1].get("epoch") if log_history else None,
                    "train_loss": sum(losses) / len(losses) if losses else None})
    return out


def train(config: PRMTrainConfig, progress: bool = True, callbacks: Sequence = ()) -> TrainResult:
    """Train a PRM as ``config`` says (resuming from its checkpoints) and save it. ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (logging, early stopping, ...)."""
    started = time.monotonic()
    _check_lora(config)
    out = _prepare_output(config)
    base = resolve_model_path(config.base_model)
    if not (Path(base) / "config.json").is_file():
        raise ConfigError(f"train_prm.base_model must be a local model directory (with config.json) or "
                          f"builtin:NAME; nothing is downloaded, got {config.base_model!r}")
    _check_can_save(config, out, base)
    train_ex, val_ex = _split(config)
    device = resolve_device(config.device)
    amp = autocast_dtype(config.dtype, device)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(base)
    fmt = config.step_format
    if not tokenizer(config.separator, add_special_tokens=False)["input_ids"]:
        raise ConfigError(f"train_prm.separator {config.separator!r} has no token in this tokenizer; pick another")
    reward_ids = None
    if config.head == "reward-token":
        try:
            reward_ids = reward_token_ids(tokenizer, config.reward_tokens)
        except ValueError as e:
            raise ConfigError(f"train_prm.{e}") from None
    ckpt, resume_from = _checkpoints(config)
    train_items = _encode(tokenizer, fmt, train_ex, config.max_length)
    val_items = _encode(tokenizer, fmt, val_ex, config.max_length)
    skipped = sum(1 for it in train_items for p, t in zip(it.encoded.positions, it.targets, strict=True)
                  if p is None and t is not None)
    if skipped:
        log.warning("train-prm: %d labeled steps end beyond max_length = %d and are left out", skipped,
                    config.max_length)
    if not val_items:
        log.warning("train-prm: no validation split; the last checkpoint is saved (set validation or val_fraction)")
    lm = _wrap_lora(load_causal_lm(base), config)
    model = PRMModel(lm, config.head, reward_ids=reward_ids)
    labeled = [(t, w) for it in train_items for p, t, w in zip(it.encoded.positions, it.targets, it.weights,
                                                                strict=True) if p is not None and t is not None]
    weight = sum(w for _, w in labeled)
    model.set_base_rate(sum(t * w for t, w in labeled) / weight if weight else 0.5)
    if config.head == "logprob":  # the features' mean and std over (up to 1024 of) the training trajectories
        sample = [train_items[i].encoded for i in
                  sorted(random.Random(config.seed).sample(range(len(train_items)), min(1024, len(train_items))))]
        model.set_feature_stats(*feature_stats(model.to(device), sample, tokenizer.pad_token_id, device,
                                               config.batch_size, amp))
    pad_id = tokenizer.pad_token_id
    clock = {"seconds": 0.0}
    trainer = _make_trainer(config, model, train_items, val_items, pad_id, device, amp, ckpt, clock, progress,
                            callbacks)
    log.info("train-prm: %d training and %d validation trajectories, head %s, %d epochs on %s%s%s",
             len(train_items), len(val_items), config.head, config.epochs, device,
             " (bf16)" if amp else "", f", resuming from {resume_from}" if resume_from else "")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    model = trainer.model
    run_device = next(model.parameters()).device
    threshold, validation = THRESHOLD, None
    if val_items:
        scores, _ = score_items(model, val_items, pad_id, run_device, amp, config.batch_size)
        threshold = best_threshold(list(zip(scores, (it.targets for it in val_items), strict=True)),
                                   reference=config.reference_threshold)
        validation = evaluate(model, val_items, pad_id, run_device, amp, config.batch_size, threshold,
                              config.reference_threshold)
    history = _history(trainer.state.log_history)
    best = trainer.state.best_model_checkpoint
    _save(model, tokenizer, config, out, history, len(train_items), len(val_items), threshold, validation,
          reward_ids, Path(best).name if best else None)
    if not config.keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    return TrainResult(str(out), history, len(train_items), len(val_items), skipped, time.monotonic() - started,
                       trainer.state.global_step, clock["seconds"], validation, threshold,
                       str(resume_from) if resume_from else None)


def _save(model, tokenizer, config: PRMTrainConfig, out: Path, history: list[dict], n_train: int, n_val: int,
          threshold: float, validation: dict | None, reward_ids, best: str | None) -> None:
    staging = out.parent / f".{out.name}.train-prm-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "model").mkdir(parents=True)
    try:
        model = model.to("cpu")
        save_prm_model(model, staging / "model")
        tokenizer.save_pretrained(staging / "model")
        meta = {
            "format": PRM_FORMAT,
            "format_version": PRM_FORMAT_VERSION,
            "head": config.head,
            "head_config": {
                "features": list(FEATURES) if config.head == "logprob" else [],
                "logprob_scale": LOGPROB_SCALE,
                "reward_tokens": list(config.reward_tokens) if config.head == "reward-token" else [],
                "reward_token_ids": list(reward_ids) if reward_ids else [],
                "skip_final_separator": True,
            },
            "score": "sigmoid of the head's logit at the last token of each step followed by the separator",
            "threshold": threshold,
            "threshold_rule": "the ProcessBench-F1-best threshold on the validation split (0.5 without one); "
                              "a step is erroneous when its score <= threshold",
            "reference_threshold": config.reference_threshold,
            "step_format": config.step_format.to_json(),
            "max_length": config.max_length,
            "base_model": config.base_model,
            "loss": "sum(w * BCE) / sum(w) (MetaStone-S1)",
            "config": dataclasses.asdict(config),
            "train_trajectories": n_train,
            "validation_trajectories": n_val,
            "best_checkpoint": best,
            "validation": validation,
            "history": history,
            "weights_sha256": _sha256(staging / "model"),
        }
        (staging / PRM_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary(result: TrainResult) -> str:
    val = result.validation or {}

    def fmt(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    return (f"saved {result.output}{resumed}: {result.train_trajectories} training trajectories, {result.steps} "
            f"optimiser steps in {result.seconds:.0f} s; validation ({result.validation_trajectories} trajectories) "
            f"loss {fmt(val.get('loss'))}, step AUC {fmt(val.get('step_auc'))}, ProcessBench F1 "
            f"{fmt(val.get('processbench_f1'))} at threshold {result.threshold:.3f}")


DESCRIPTION = """Train a PRM on a `prmflow export --format prmflow` export (soft labels, consistency weights);
saves OUT/model and OUT/prm.json. Started again after a kill, it resumes from its last checkpoint
(resume: true). The YAML config's keys: prmflow/prm/config.py (PRMTrainConfig)."""


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
