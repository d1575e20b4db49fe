"""The PRM: a transformers causal LM's body with a one-logit step head, read at step ends.

Why one logit and not two labels: a step's target is one probability (a Monte-Carlo value, or 0/1),
and binary cross-entropy on one logit is exactly that; a two-label softmax carries the same
information in the difference of two logits, and a single logit is also MetaStone-S1's score, whose
sign their consistency rule reads (logit 0 = probability 0.5, the threshold of ``consistency``).
The score of a step is ``sigmoid(logit)`` at its last token (:mod:`prmflow.prm.encoding`).

Three heads (``train_prm.head``), all on :class:`PRMModel`:

* ``logprob``: a linear map of the separator's last hidden state *and* the step's token
  log-probabilities under the LM (min, mean and last token log-prob, and the lowest token
  probability). On solutions a model sampled itself, its own slips are low-probability tokens; a
  fresh head on the hidden state alone barely sees them (a linear probe of the separator state:
  AUC 0.58-0.65 on arith, issue 27), the log-probabilities carry them directly. The final step's
  separator is left out of its features (``skip_final_separator``): the policy ended its solution
  with ``</s>`` there, never with the separator, so that token's probability is noise.
* ``reward-token``: the LM head's logits of a good and a bad token at the separator, ``l(+) - l(-)``
  (Math-Shepherd reads ``+``/``-`` at its ``ки`` tag; Qwen2.5-Math-PRM's two classes are the same
  softmax over two), plus a bias.
* ``value``: a linear head on the separator's hidden state alone (the first prmflow PRM's design).

Every head's bias starts at the training targets' base rate (``logit(mean target)``) and its
weights at 0, so training starts from the best constant prediction; the logprob head's one exception
is its weight on the lowest token log-prob, which starts at 1. Its features are standardised by their
mean and std over the training steps (computed once before training, saved with the head), so it
starts as the policy-likelihood scorer centred on the base rate: a step whose lowest log-prob is one
std below the mean sits one logit below the base rate, whatever the base (a base that finds every step
unlikely, being no policy of them, is centred as well), and the labels move it from there. Started at 0, that weight needs hundreds of Adam
steps to outgrow the noise of the hidden-state weights (validation AUC 0.75-0.79 after one epoch on
arith, against 0.99 for the untrained likelihood). PRMs saved before the heads
(``prm.json`` head ``single-logit``: an ``AutoModelForTokenClassification`` with one label) still
load and score as before (:class:`LegacyPRM`).

torch and transformers are imported here and only here (plus train/scorer), lazily by callers.
"""

from __future__ import annotations

import math
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


FEATURES = ("min_logprob", "mean_logprob", "last_logprob", "min_prob")
"""The logprob head's per-step features, in this order (log-probs scaled by ``LOGPROB_SCALE``)."""
LOGPROB_SCALE = 1.0
"""The log-prob features enter the head as they are (clamped at LOGPROB_FLOOR): an error token at
-5 against -0.05 for a right one needs a weight of only ~1 to move the logit by several units."""
LOGPROB_FLOOR = -20.0
HEAD_FILE = "head.safetensors"
LEGACY_HEAD = "single-logit"


def load_model(path: str, *, new_head: bool):
    """A one-logit token classifier (the ``single-logit`` PRMs saved before the heads)."""
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


def load_causal_lm(path: str):
    """A causal LM in float32 with its output embedding untied from the input embedding, so its state
    dict has no shared tensors (checkpoints are plain safetensors) and the two can train apart."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per PRM load is noise in logs and benches
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    out, inp = lm.get_output_embeddings(), lm.get_input_embeddings()
    if out is not None and out.weight is inp.weight:
        out.weight = torch.nn.Parameter(inp.weight.detach().clone())
    lm.config.tie_word_embeddings = False
    if getattr(lm.config, "get_text_config", None) is not None:
        lm.config.get_text_config().tie_word_embeddings = False
    return lm


class PRMModel(torch.nn.Module):
    """A causal LM and a step head; ``forward`` returns one logit per scored step (float32)."""

    def __init__(self, lm, head: str, *, reward_ids: tuple[int, int] | None = None,
                 skip_final_separator: bool = True) -> None:
        super().__init__()
        self.lm = lm
        self.head = head
        self.skip_final_separator = skip_final_separator
        hidden = lm.config.get_text_config().hidden_size if hasattr(lm.config, "get_text_config") \
            else lm.config.hidden_size
        if head == "value":
            self.score = torch.nn.Linear(hidden, 1)
        elif head == "logprob":
            self.score = torch.nn.Linear(hidden + len(FEATURES), 1)
            self.hidden_scale = hidden ** -0.5
            # the features are standardised by their mean and std over the training steps (set_feature_stats)
            self.register_buffer("feat_mean", torch.zeros(len(FEATURES)))
            self.register_buffer("feat_std", torch.ones(len(FEATURES)))
        elif head == "reward-token":
            if reward_ids is None:
                raise ValueError("head reward-token needs the good and bad token ids")
            self.register_buffer("reward_ids", torch.tensor(reward_ids, dtype=torch.long), persistent=False)
            self.bias = torch.nn.Parameter(torch.zeros(1))
        else:
            raise ValueError(f"head must be one of 'logprob', 'reward-token', 'value', got {head!r}")
        if head != "reward-token":
            torch.nn.init.zeros_(self.score.weight)
            torch.nn.init.zeros_(self.score.bias)
        if head == "logprob":
            with torch.no_grad():  # the prior: logit = base rate + the step's standardised lowest token log-prob
                self.score.weight[0, hidden + FEATURES.index("min_logprob")] = 1.0

    def head_parameters(self) -> list[torch.nn.Parameter]:
        return [self.bias] if self.head == "reward-token" else list(self.score.parameters())

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("lm.")}

    def set_base_rate(self, rate: float) -> None:
        """The head's bias at logit(rate): training starts from the best constant prediction."""
        rate = min(max(rate, 1e-3), 1 - 1e-3)
        bias = self.bias if self.head == "reward-token" else self.score.bias
        with torch.no_grad():
            bias.fill_(math.log(rate / (1 - rate)))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        with torch.no_grad():
            self.feat_mean.copy_(mean)
            self.feat_std.copy_(std.clamp(min=1e-3))

    def raw_features(self, hidden, input_ids, rows, tok_rows, tok_cols, tok_step, tok_last) -> torch.Tensor:
        """Per scored step, the logprob head's FEATURES before standardisation (float32)."""
        lm_head = self.lm.get_output_embeddings()
        # token t's log-prob is read from the logits at t - 1
        logits = lm_head(hidden[tok_rows, tok_cols - 1]).float()
        lp = torch.log_softmax(logits, dim=-1).gather(1, input_ids[tok_rows, tok_cols].unsqueeze(1)).squeeze(1)
        lp = lp.clamp(min=LOGPROB_FLOOR)
        n = rows.shape[0]
        lo = torch.zeros(n, device=lp.device).scatter_reduce(0, tok_step, lp, "amin", include_self=False)
        total = torch.zeros(n, device=lp.device).index_add(0, tok_step, lp)
        count = torch.zeros(n, device=lp.device).index_add(0, tok_step, torch.ones_like(lp))
        return torch.stack([lo * LOGPROB_SCALE, total / count.clamp(min=1) * LOGPROB_SCALE,
                            lp[tok_last] * LOGPROB_SCALE, lo.exp()], dim=1)

    def hidden_states(self, input_ids, attention_mask) -> torch.Tensor:
        body = self.lm.get_decoder() if hasattr(self.lm, "get_decoder") else self.lm.base_model
        return body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, input_ids, attention_mask, rows, cols, tok_rows=None, tok_cols=None, tok_step=None,
                tok_last=None, **_unused) -> torch.Tensor:
        hidden = self.hidden_states(input_ids, attention_mask)
        at_sep = hidden[rows, cols]
        if self.head == "value":
            return self.score(at_sep).squeeze(-1).float()
        lm_head = self.lm.get_output_embeddings()
        if self.head == "reward-token":
            w = lm_head.weight[self.reward_ids]  # (2, hidden)
            two = at_sep @ w.T.to(at_sep.dtype)
            if getattr(lm_head, "bias", None) is not None:
                two = two + lm_head.bias[self.reward_ids]
            return (two[:, 0] - two[:, 1]).float() + self.bias
        raw = self.raw_features(hidden, input_ids, rows, tok_rows, tok_cols, tok_step, tok_last)
        feats = (raw - self.feat_mean) / self.feat_std
        # the hidden state enters scaled by 1/sqrt(hidden): under Adam every weight moves ~head_lr a step, so
        # unscaled its `hidden` weights would outgrow the four features' and drown their signal in noise
        # the separator state barely carries (a probe's AUC 0.58-0.65, issue 27)
        h = at_sep.float() * self.hidden_scale
        return self.score(torch.cat([h, feats], dim=1).to(self.score.weight.dtype)).squeeze(-1).float()


class LegacyPRM(torch.nn.Module):
    """A ``single-logit`` PRM: the token classifier's logit at each step's last token."""

    head = LEGACY_HEAD

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, rows, cols, **_unused) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits[rows, cols, 0].float()


@torch.no_grad()
def feature_stats(model: PRMModel, encoded: Sequence[Encoded], pad_id: int, device, batch_size: int,
                  amp: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the logprob head's raw features over every scored step of ``encoded``."""
    was_training = model.training
    model.eval()
    rows = []
    for start in range(0, len(encoded), batch_size):
        batch, _ = collate(encoded[start : start + batch_size], pad_id, device, model.skip_final_separator)
        with torch.autocast(device_type=batch.input_ids.device.type, dtype=amp, enabled=amp is not None):
            hidden = model.hidden_states(batch.input_ids, batch.attention_mask)
        rows.append(model.raw_features(hidden.float(), batch.input_ids, batch.rows, batch.tok_rows, batch.tok_cols,
                                       batch.tok_step, batch.tok_last).cpu())
    model.train(was_training)
    feats = torch.cat(rows) if rows else torch.zeros(0, len(FEATURES))
    if len(feats) < 2:
        return torch.zeros(len(FEATURES)), torch.ones(len(FEATURES))
    return feats.mean(0), feats.std(0)


def reward_token_ids(tokenizer, tokens: Sequence[str]) -> tuple[int, int]:
    """The ids of the good and bad reward tokens; ValueError unless each is exactly one token."""
    ids = []
    for t in tokens:
        got = tokenizer(t, add_special_tokens=False)["input_ids"]
        if len(got) != 1:
            raise ValueError(f"reward_tokens must each be one token of the tokenizer, got {t!r} -> {got}")
        ids.append(got[0])
    return ids[0], ids[1]


def save_prm_model(model: PRMModel, directory) -> None:
    """``model/``: the LM (transformers) and ``head.safetensors`` (the head's own parameters)."""
    from pathlib import Path

    from safetensors.torch import save_file

    directory = Path(directory)
    lm = model.lm
    if hasattr(lm, "merge_and_unload"):  # a LoRA-wrapped body: merge the adapters into the weights
        lm = lm.merge_and_unload()
    lm.save_pretrained(directory)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.head_state().items()}, str(directory / HEAD_FILE))


def load_prm_model(model_dir: str, meta: dict):
    """The model of a saved PRM, as its ``prm.json`` describes it (legacy single-logit ones too)."""
    from pathlib import Path

    from safetensors.torch import load_file

    head = meta.get("head", LEGACY_HEAD)
    if head == LEGACY_HEAD:
        return LegacyPRM(load_model(model_dir, new_head=False))
    info = meta.get("head_config") or {}
    reward = info.get("reward_token_ids")
    model = PRMModel(load_causal_lm(model_dir), head, reward_ids=tuple(reward) if reward else None,
                     skip_final_separator=bool(info.get("skip_final_separator", True)))
    state = load_file(str(Path(model_dir) / HEAD_FILE))
    missing = set(model.head_state()) - set(state)
    if missing:
        raise ValueError(f"{model_dir}/{HEAD_FILE} lacks the head parameters {sorted(missing)}")
    model.load_state_dict(state, strict=False)
    return model


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rows: torch.Tensor
    """Per scored step: its sequence in the batch."""
    cols: torch.Tensor
    """Per scored step: its last token's position."""
    tok_rows: torch.Tensor | None = None
    """Per token of a scored step (the logprob head's features): its sequence ..."""
    tok_cols: torch.Tensor | None = None
    """... its position ..."""
    tok_step: torch.Tensor | None = None
    """... and its step's index in the flat step vector."""
    tok_last: torch.Tensor | None = None
    """Per scored step: the index of its last feature token in the token vectors."""

    def as_inputs(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def collate(encoded: Sequence[Encoded], pad_id: int, device: str | None,
            skip_final_separator: bool = True) -> tuple[Batch, list[list[int | None]]]:
    """Right-padded tensors, and per sequence the index of each step in the flat step vector (None for
    a step beyond max_length). The token vectors list, per scored step, the tokens of its text and
    separator, without the final step's separator when ``skip_final_separator``."""
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    rows, cols, index = [], [], []
    tok_rows, tok_cols, tok_step, tok_last = [], [], [], []
    for b, e in enumerate(encoded):
        ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        mask[b, : len(e.input_ids)] = 1
        where: list[int | None] = []
        last = len(e.positions) - 1
        for k, pos in enumerate(e.positions):
            if pos is None:
                where.append(None)
                continue
            step = len(rows)
            where.append(step)
            rows.append(b)
            cols.append(pos)
            if e.starts is not None:
                end = e.text_ends[k] if (k == last and skip_final_separator) else pos
                first = max(1, e.starts[k])  # a token's log-prob needs the logits before it
                span = range(first, max(first, end) + 1)
                tok_rows.extend([b] * len(span))
                tok_cols.extend(span)
                tok_step.extend([step] * len(span))
                tok_last.append(len(tok_cols) - 1)
        index.append(where)

    def tensor(values: list[int]) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.long)
        return t.to(device) if device else t

    has_tokens = all(e.starts is not None for e in encoded)
    batch = Batch(ids.to(device) if device else ids, mask.to(device) if device else mask, tensor(rows), tensor(cols),
                  tensor(tok_rows) if has_tokens else None, tensor(tok_cols) if has_tokens else None,
                  tensor(tok_step) if has_tokens else None, tensor(tok_last) if has_tokens else None)
    return batch, index


def step_logits(model, batch: Batch, amp: torch.dtype | None) -> torch.Tensor:
    """One logit per scored step (float32), in the order of ``batch.rows``."""
    device_type = batch.input_ids.device.type
    with torch.autocast(device_type=device_type, dtype=amp, enabled=amp is not None):
        if isinstance(model, torch.nn.Module) and hasattr(model, "head"):
            return model(**batch.as_inputs()).float()
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return logits[batch.rows, batch.cols, 0].float()
