"""The PRM: a transformers body with a one-logit token-classification head, read at step ends.

Why one logit and not two labels: a step's target is one probability (a Monte-Carlo value, or 0/1),
and binary cross-entropy on one logit is exactly that; a two-label softmax carries the same
information in the difference of two logits (one more parameter row, no more expressiveness), and a
single logit is also MetaStone-S1's score, whose sign their consistency rule reads (logit 0 =
probability 0.5, the threshold of ``consistency``). The score of a step is ``sigmoid(logit)`` at its
last token (:mod:`prmflow.prm.encoding`). Any ``AutoModelForTokenClassification`` architecture works
(Llama, Qwen2, Mistral, ...): the body's weights come from the base model, the head is new.

torch and transformers are imported here and only here (plus train/scorer), lazily by callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from prmflow.prm.encoding import Encoded


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(w * BCE(sigmoid(logit), target)) / sum(w)`` over the steps of a batch.

    MetaStone-S1 (Wang et al. 2025, "Test-Time Scaling with Reflective Generative Model"; their
    ``verl/workers/actor/dp_actor.py``) normalises the weighted loss by the sum of the weights, so the
    loss scale does not depend on how many steps the consistency weights keep. Targets may be soft
    (Math-Shepherd's SE labels). A batch whose weights are all 0 has loss 0 and zero gradients.
    """
    per_step = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    weights = weights.float()
    total = weights.sum()
    if total <= 0:
        return (logits.float() * 0.0).sum()
    return (weights * per_step).sum() / total


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but torch sees no GPU; use device: auto or cpu")
    return device


def autocast_dtype(dtype: str, device: str) -> torch.dtype | None:
    """The autocast dtype (None: plain float32). auto: bfloat16 on a GPU that supports it."""
    if dtype == "float32":
        return None
    if dtype == "bfloat16":
        return torch.bfloat16
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, *, new_head: bool):
    """A one-logit token classifier; ``new_head``: from a base LM (the head is initialised here)."""
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    if new_head:  # "some weights were newly initialized" is the point here, not a warning
        hf_logging.set_verbosity_error()
    try:
        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(previous)
    if model.config.num_labels != 1:
        raise ValueError(f"{path} is a {model.config.num_labels}-label classifier; a prmflow PRM has one logit")
    return model


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rows: torch.Tensor
    """Per scored step: its sequence in the batch."""
    cols: torch.Tensor
    """Per scored step: its last token's position."""


def collate(encoded: Sequence[Encoded], pad_id: int, device: str) -> tuple[Batch, list[list[int | None]]]:
    """Right-padded tensors, and per sequence the index of each step in the flat step vector (None for
    a step beyond max_length)."""
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    rows, cols, index = [], [], []
    for b, e in enumerate(encoded):
        ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        mask[b, : len(e.input_ids)] = 1
        where: list[int | None] = []
        for pos in e.positions:
            if pos is None:
                where.append(None)
            else:
                where.append(len(rows))
                rows.append(b)
                cols.append(pos)
        index.append(where)
    batch = Batch(ids.to(device), mask.to(device), torch.tensor(rows, dtype=torch.long, device=device),
                  torch.tensor(cols, dtype=torch.long, device=device))
    return batch, index


def step_logits(model, batch: Batch, amp: torch.dtype | None) -> torch.Tensor:
    """One logit per scored step (float32), in the order of ``batch.rows``."""
    device_type = batch.input_ids.device.type
    with torch.autocast(device_type=device_type, dtype=amp, enabled=amp is not None):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return logits[batch.rows, batch.cols, 0].float()
