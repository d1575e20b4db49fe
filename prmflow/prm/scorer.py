"""``PRMScorer``: a saved PRM's per-step scores, batched.

Loads ``prm.json`` (step format, max length) and ``model/``; ``score(prompt, steps)`` returns one float
in [0, 1] per step (None for a step ending beyond the PRM's max_length). Sequences are sorted by
length before batching, so padding stays small; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from prmflow.prm.config import read_prm_json
from prmflow.prm.encoding import StepFormat, encode_many
from prmflow.prm.model import autocast_dtype, collate, load_model, load_tokenizer, resolve_device, step_logits


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
        self.model = load_model(model_dir, new_head=False).to(self.device).eval()

    def score(self, prompt: str, steps: Sequence[str]) -> list[float | None]:
        return self.score_many([(prompt, steps)])[0]

    @torch.no_grad()
    def score_many(self, examples: Sequence[tuple[str, Sequence[str]]]) -> list[list[float | None]]:
        encoded = encode_many(self.tokenizer, self.format, examples, self.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        out: list[list[float | None]] = [[] for _ in encoded]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch, index = collate([encoded[i] for i in chunk], self.tokenizer.pad_token_id, self.device)
            probs = torch.sigmoid(step_logits(self.model, batch, self.amp)).tolist()
            for i, where in zip(chunk, index, strict=True):
                out[i] = [None if w is None else probs[w] for w in where]
        return out
