"""The two PRM sections: ``PRMTrainConfig`` (a ``prmflow train-prm`` YAML file) and ``PRMScoreConfig``
(the ``prm`` section of a run, which scores every step with a trained PRM).

Both are frozen dataclasses built by :func:`prmflow.core.section.from_mapping`, so a bad value fails at
load with "<section>.<field> must be <rule>, got <value>". No torch here: the run config imports this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prmflow.core.section import ConfigError, from_mapping, load_yaml, require
from prmflow.prm.encoding import StepFormat

Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["auto", "float32", "bfloat16"]
Head = Literal["logprob", "reward-token", "value"]
HEADS = ("logprob", "reward-token", "value")

PRM_JSON = "prm.json"
"""The file beside ``model/`` in a saved PRM: its step format, scoring rule and training record."""
PRM_FORMAT = "prmflow-prm"
PRM_FORMAT_VERSION = 1


def _paths(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class PRMTrainConfig:
    """What ``prmflow train-prm CONFIG.yaml`` trains: data, base model, optimisation, output."""

    data: str | tuple[str, ...]
    """Training data: ``prmflow export --format prmflow`` directories (their ``train`` file is read) or
    ``.parquet`` / ``.jsonl`` files with ``prompt``, ``steps`` and the label column."""
    output: str
    """The saved PRM: ``OUTPUT/model/`` (transformers) and ``OUTPUT/prm.json``."""
    base_model: str = "builtin:arith-tiny"
    """A local causal-LM directory or ``builtin:NAME``; its body is fine-tuned under the ``head``."""
    head: Head = "logprob"
    """How a step's logit is made (see :mod:`prmflow.prm.model`). logprob: a linear head on the
    separator's hidden state and the step's token log-probabilities under the base LM (min, mean,
    last, lowest probability); reward-token: the LM head's ``reward_tokens`` logits at the separator
    (Math-Shepherd / Qwen style); value: a linear head on the separator's hidden state alone."""
    reward_tokens: tuple[str, ...] = ("+", "-")
    """head reward-token: the good and the bad token (each one token of the tokenizer)."""
    validation: str | tuple[str, ...] | None = None
    """Validation files or export directories (their ``validation`` file). Default: ``val_fraction`` of
    the training problems when > 0, else the validation files of the ``data`` export directories."""
    val_fraction: float = 0.0
    """Hold out this fraction of the training problems (a seeded hash of ``problem_id``, else the
    prompt) for validation; only when ``validation`` is not set. 0 <= x < 1."""
    label_column: str = "labels"
    """The per-step target column, floats in [0, 1]: soft (MC value) or hard (0/1) labels alike;
    the export's ``--label`` decides which. A null target leaves the step out of the loss."""
    reference_threshold: float = 0.0
    """For validation (checkpoint choice, threshold, metrics): a step's target counts as a correct step
    when it is above this. 0: any chance of success, Math-Shepherd's hard-estimation rule, which is
    what every prmflow label means (gold and hard labels are 0/1; an MC soft value of 0.25 is a step
    from which 1 rollout in 4 succeeded). 0.5 for targets that are calibrated probabilities."""
    use_weights: bool = True
    """Weigh each step's loss by the ``weights`` column (MetaStone-S1 consistency weights); a null
    weight counts 1. false: every labeled step weighs 1."""
    epochs: int = 3
    lr: float = 1e-5
    """AdamW peak learning rate of the body (linear warm-up over ``warmup_ratio`` of the steps, then
    linear decay). A small body rate keeps the base LM's log-probabilities, which the logprob head reads."""
    head_lr: float = 3e-3
    """Peak learning rate of the head's own parameters (same schedule)."""
    batch_size: int = 16
    """Trajectories per optimiser step (per device: with N GPUs an optimiser step sees N x this)."""
    micro_batch_size: int | None = None
    """Trajectories per forward pass; ``batch_size / micro_batch_size`` micro-batches are accumulated
    per optimiser step. Must divide ``batch_size``. Default: ``batch_size``."""
    max_length: int = 512
    """Tokens per sequence; steps whose last token falls beyond are left out (and counted)."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    seed: int = 0
    """Seeds the head's initialisation, the shuffling and the validation split."""
    device: Device = "auto"
    """auto: cuda when available, else cpu."""
    dtype: Dtype = "auto"
    """auto: bfloat16 autocast on a GPU that supports it, float32 on CPU. Weights stay float32."""
    separator: str = "\n"
    """Text after every step; the score is read at its last token (saved in prm.json)."""
    prompt_template: str = "{prompt}\n"
    """How the problem is written before the first step; must contain ``{prompt}``."""
    log_every: int = 20
    """One log line (loss, learning rate) every N optimiser steps."""
    eval_steps: int = 0
    """Validate (and checkpoint) every N optimiser steps; 0: at the end of every epoch. The saved PRM
    is the checkpoint with the best validation step AUC (the last one when there is no validation)."""
    checkpoint_dir: str | None = None
    """Where checkpoints go while training (default ``OUTPUT.checkpoints``); removed after the PRM is
    published unless ``keep_checkpoints``."""
    resume: bool = True
    """Resume from the last complete checkpoint in ``checkpoint_dir`` (a killed run continues to the
    same result); the checkpoints must come from the same config, else the run is refused."""
    keep_checkpoints: bool = False
    save_total_limit: int = 2
    """Checkpoints kept besides the best one."""
    lora_r: int = 0
    """> 0: train LoRA adapters of this rank on the body instead of the whole body (needs ``peft``);
    merged into the saved model."""
    lora_alpha: int = 16
    overwrite: bool = False
    """Replace an existing ``output``; false refuses a non-empty directory."""

    def __post_init__(self) -> None:
        require(bool(self.train_paths) and all(p.strip() for p in self.train_paths), "data",
                "a path or a non-empty list of paths", self.data)
        require(bool(self.output.strip()), "output", "a non-empty path", self.output)
        require(0.0 <= self.val_fraction < 1.0, "val_fraction", "in [0, 1)", self.val_fraction)
        require(self.epochs >= 1, "epochs", ">= 1", self.epochs)
        require(0 < self.lr < 1, "lr", "in (0, 1)", self.lr)
        require(0 < self.head_lr < 1, "head_lr", "in (0, 1)", self.head_lr)
        require(0 <= self.reference_threshold < 1, "reference_threshold", "in [0, 1)", self.reference_threshold)
        require(self.head in HEADS, "head", f"one of {', '.join(map(repr, HEADS))}", self.head)
        require(len(self.reward_tokens) == 2 and all(isinstance(t, str) and t for t in self.reward_tokens)
                and self.reward_tokens[0] != self.reward_tokens[1], "reward_tokens",
                "two different non-empty strings (the good token, the bad token)", self.reward_tokens)
        require(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)
        require(self.micro_batch_size is None or (self.micro_batch_size >= 1
                                                  and self.batch_size % self.micro_batch_size == 0),
                "micro_batch_size", f"a divisor of batch_size ({self.batch_size}) or null", self.micro_batch_size)
        require(self.eval_steps >= 0, "eval_steps", ">= 0", self.eval_steps)
        require(self.save_total_limit >= 1, "save_total_limit", ">= 1", self.save_total_limit)
        require(self.lora_r >= 0, "lora_r", ">= 0", self.lora_r)
        require(self.lora_alpha >= 1, "lora_alpha", ">= 1", self.lora_alpha)
        require(self.checkpoint_dir is None or bool(self.checkpoint_dir.strip()), "checkpoint_dir",
                "a non-empty path or null", self.checkpoint_dir)
        require(self.max_length >= 8, "max_length", ">= 8", self.max_length)
        require(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        require(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)", self.warmup_ratio)
        require(self.log_every >= 1, "log_every", ">= 1", self.log_every)
        require(bool(self.label_column.strip()), "label_column", "a column name", self.label_column)
        StepFormat(self.separator, self.prompt_template)  # refuses a bad separator or template now

    @property
    def train_paths(self) -> tuple[str, ...]:
        return _paths(self.data)

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_dir or self.output.rstrip("/") + ".checkpoints"

    @property
    def accumulation(self) -> int:
        return self.batch_size // (self.micro_batch_size or self.batch_size)

    @property
    def validation_paths(self) -> tuple[str, ...]:
        return _paths(self.validation)

    @property
    def step_format(self) -> StepFormat:
        return StepFormat(separator=self.separator, prompt_template=self.prompt_template)


@dataclass(frozen=True)
class PRMScoreConfig:
    """The ``prm`` section of a run: score every step of every trajectory into ``steps.prm_score``."""

    model: str
    """A PRM saved by ``prmflow train-prm`` (a directory holding ``prm.json`` and ``model/``)."""
    batch_trajectories: int = 64
    """Trajectories per RunInference batch (and per stage-cache entry)."""
    batch_size: int = 16
    """Sequences per forward pass inside a batch."""
    device: Device = "auto"
    dtype: Dtype = "auto"
    fingerprint: str = field(default="", init=False)
    """The saved weights' sha256 (from prm.json): part of the stage cache's digest, so a PRM retrained
    into the same directory is never served from an old cache."""

    def __post_init__(self) -> None:
        require(self.batch_trajectories >= 1, "batch_trajectories", ">= 1", self.batch_trajectories)
        require(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)
        meta = read_prm_json(self.model, "model")
        object.__setattr__(self, "fingerprint", str(meta.get("weights_sha256", "")))


def read_prm_json(directory: str, where: str) -> dict[str, Any]:
    """The ``prm.json`` of a saved PRM, checked; ConfigError "<where> must be ..." otherwise."""
    path = Path(directory) / PRM_JSON
    require(path.is_file() and (Path(directory) / "model").is_dir(), where,
            "a PRM saved by `prmflow train-prm` (a directory with prm.json and model/)", directory)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where} {str(path)!r} cannot be read: {e}") from None
    require(isinstance(meta, dict) and meta.get("format") == PRM_FORMAT, where,
            f"a directory whose prm.json has format {PRM_FORMAT!r}", directory)
    require(meta.get("format_version") == PRM_FORMAT_VERSION, f"{where} prm.json format_version",
            str(PRM_FORMAT_VERSION), meta.get("format_version"))
    return meta


def parse_train_config(data: Any, where: str = "train_prm") -> PRMTrainConfig:
    return from_mapping(PRMTrainConfig, data, where)


def load_train_config(path: str | Path) -> PRMTrainConfig:
    """A ``prmflow train-prm`` config file: one flat mapping of :class:`PRMTrainConfig`'s fields."""
    data = load_yaml(path)
    return parse_train_config(data)
