"""``PRMScorer``: a saved PRM's per-step scores, batched.

Loads ``prm.json`` (step format, max length) and ``model/``; ``score(prompt, steps)`` returns one float
in [0, 1] per step (None for a step ending beyond the PRM's max_length). Sequences are sorted by
length before batching, so padding stays small; results come back in input order. Every head of
:mod:`prmflow.prm.model` loads, and so do the ``single-logit`` PRMs saved before the heads.
``threshold`` is the PRM's own (chosen on its validation split; 0.5 for older PRMs): a step scored at
or below it is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from prmflow.prm.config import read_prm_json
from prmflow.prm.encoding import StepFormat, encode_many
from prmflow.prm.metrics import THRESHOLD
from prmflow.prm.model import (
    autocast_dtype,
    collate,
    load_prm_model,
    load_tokenizer,
    resolve_device,
    step_logits,
)


class PRMScorer:
    def __init__(self, path: str, device: str = "auto", dtype: str = "auto", batch_size: int = 16) -> None:
        self.meta = read_prm_json(path, "PRM")
        fmt = self.meta["step_format"]
        self.format = StepFormat(separator=fmt["separator"], prompt_template=fmt["prompt_template"])
        self.max_length = int(self.meta["max_length"])
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.amp = autocast_dtype(dtype, self.device)
        model_dir = str(Path(path) / "model")
        self.tokenizer = load_tokenizer(model_dir)
        self.model = load_prm_model(model_dir, self.meta).to(self.device).eval()
        self.head = self.meta.get("head", "single-logit")
        self.threshold = float(self.meta.get("threshold", THRESHOLD))
        self.skip_final_separator = bool((self.meta.get("head_config") or {}).get("skip_final_separator", True))

    def score(self, prompt: str, steps: Sequence[str]) -> list[float | None]:
        return self.score_many([(prompt, steps)])[0]

    @torch.no_grad()
    def score_many(self, examples: Sequence[tuple[str, Sequence[str]]]) -> list[list[float | None]]:
        encoded = encode_many(self.tokenizer, self.format, examples, self.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        out: list[list[float | None]] = [[] for _ in encoded]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch, index = collate([encoded[i] for i in chunk], self.tokenizer.pad_token_id, self.device,
                                   self.skip_final_separator)
            probs = torch.sigmoid(step_logits(self.model, batch, self.amp)).tolist()
            for i, where in zip(chunk, index, strict=True):
                out[i] = [None if w is None else probs[w] for w in where]
        return out
