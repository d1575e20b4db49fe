"""transformers ``generate`` behind the :class:`~prmflow.samplers.base.Sampler` interface.

The reference backend: no vLLM, runs anywhere torch runs (CPU or GPU), slower. Same semantics as
the vLLM backend: n samples per request, stop strings cut from the text, finish_reason
"stop"/"length", cumulative log-probability under the raw model distribution, per-request errors
for prompts that do not fit the context.

Sampling is done by our own logits processor rather than ``do_sample=True``: each row (one sample
of one request) has its own random stream seeded from the request (one uniform draw per token,
on the host), so a request's samples do not depend on which other requests share its batch nor on
the device, and each row keeps its own temperature/top-p. The token is picked for all rows at once
on the device (the inverse CDF of each row's distribution at its draw), with one host sync per
step: sampling row by row cost several kernel launches and syncs per row and token, which made a
GPU slower than the CPU. The processor hands back a one-hot score row and ``generate`` runs greedy.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prmflow.samplers.base import (
    Completion,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    checked_prompt,
    derive_seed,
    encode_prompt,
    require_chat_template,
    resolve_local_model,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'prmflow[hf]'"
# A tokenizer's model_max_length above this is transformers' "no limit" sentinel, not a context.
_NO_LIMIT = 10**8


def import_hf() -> tuple[Any, Any]:
    """``(torch, transformers)`` or an ImportError with the install line."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ImportError(
            f"the 'hf' sampler backend needs torch and transformers: {INSTALL_HINT} ({e})"
        ) from e
    return torch, transformers


@dataclass
class _Row:
    """One sample (request x index) in a generate batch."""

    request_pos: int
    index: int
    seed: int
    prompt_ids: list[int]
    temperature: float
    top_p: float
    max_new: int
    stop: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped_at: int | None = None  # generated-token count when a stop string first appeared


class HFSampler:
    """Samples with ``AutoModelForCausalLM.generate``; the model loads once in the constructor."""

    def __init__(self, config: SamplerConfig) -> None:
        if config.backend != "hf":
            raise ValueError(f"backend must be 'hf' for HFSampler, got {config.backend!r}")
        torch, transformers = import_hf()
        self.config = config
        self._metrics = SamplerMetrics()
        self._generate_lock = threading.Lock()
        path = resolve_local_model(config.model)
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self._tokenizer.padding_side = "left"  # decoder-only batches must end where generation starts
        kwargs = dict(config.engine_kwargs)
        dtype_key = "dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"
        kwargs.setdefault(dtype_key, _torch_dtype(torch, config.dtype))
        self._model = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs).to(self.device).eval()
        self.max_model_len: int | None = config.max_model_len or _context_length(self._model, self._tokenizer)
        gen_cfg = self._model.generation_config
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else self._tokenizer.eos_token_id
        self._eos_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        pad = self._tokenizer.pad_token_id
        if pad is None:
            pad = gen_cfg.pad_token_id if gen_cfg.pad_token_id is not None else (self._eos_ids or [0])[0]
        self._pad_id: int = int(pad)
        require_chat_template(config, self._tokenizer)

    def encode(self, prompt: str) -> list[int]:
        return encode_prompt(self._tokenizer, prompt, self.config.chat_template)

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        """Results in request order; per-request failures are results with ``error``. Calls from
        several threads are serialized: the engine is not thread-safe."""
        with self._generate_lock:
            return self._generate(requests)

    def _generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        if self._model is None:
            raise RuntimeError("sampler is closed")
        results: list[SamplingResult | None] = [None] * len(requests)
        prompt_len: dict[int, int] = {}
        rows: list[_Row] = []
        for pos, request in enumerate(requests):
            ids = checked_prompt(self.encode, request, self.max_model_len)
            if isinstance(ids, SamplingResult):
                results[pos] = ids
                continue
            prompt_len[pos] = len(ids)
            room = request.max_tokens if self.max_model_len is None else self.max_model_len - len(ids)
            seed = derive_seed(self.config.seed, request)
            for index in range(request.n):
                rows.append(
                    _Row(
                        request_pos=pos,
                        index=index,
                        seed=seed + index,  # vLLM's convention for sample i of a seeded request
                        prompt_ids=ids,
                        temperature=float(request.temperature),
                        top_p=float(request.top_p),
                        max_new=min(request.max_tokens, room),
                        stop=request.stop,
                    )
                )

        for batch in self._batches(rows):
            self._generate_batch(batch)

        by_request: dict[int, list[Completion]] = {pos: [] for pos in prompt_len}
        for row in rows:
            by_request[row.request_pos].append(self._finish(row))
        for pos, completions in by_request.items():
            results[pos] = SamplingResult(
                request_id=requests[pos].request_id,
                completions=tuple(completions),
                prompt_tokens=prompt_len[pos],
                cached_prompt_tokens=0,
            )
        final = [r for r in results if r is not None]
        assert len(final) == len(requests)
        for r in final:
            self._metrics.record(r)
        return final

    def _batches(self, rows: list[_Row]) -> list[list[_Row]]:
        """Rows grouped by prompt length (less padding), each batch short enough that its padded
        width plus its longest generation fits the context: every row of a batch runs for as many
        steps as the longest one, and learned position tables have no slot past the context.
        Regrouping is safe because each row samples from its own generator."""
        batches: list[list[_Row]] = []
        current: list[_Row] = []
        width = steps = 0
        for row in sorted(rows, key=lambda r: len(r.prompt_ids)):
            w, n = max(width, len(row.prompt_ids)), max(steps, row.max_new)
            fits = self.max_model_len is None or w + n <= self.max_model_len
            if current and (len(current) == self.config.batch_size or not fits):
                batches.append(current)
                current, w, n = [], len(row.prompt_ids), row.max_new
            current.append(row)
            width, steps = w, n
        if current:
            batches.append(current)
        return batches

    def _generate_batch(self, rows: list[_Row]) -> None:
        torch, transformers = import_hf()
        width = max(len(r.prompt_ids) for r in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row.prompt_ids)
            input_ids[i, width - n :] = torch.tensor(row.prompt_ids, dtype=torch.long)
            attention[i, width - n :] = 1
        gen_config = transformers.GenerationConfig(
            max_new_tokens=max(r.max_new for r in rows),
            do_sample=False,  # _RowSampler already picked the token; greedy just reads it back
            num_beams=1,
            eos_token_id=self._eos_ids or None,
            pad_token_id=self._pad_id,
        )
        sampler = _make_row_sampler(torch, transformers, rows, self.device, self._eos_ids)
        stopper = _make_row_stopper(torch, transformers, rows, self._tokenizer)
        with torch.inference_mode():
            self._model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=gen_config,
                logits_processor=transformers.LogitsProcessorList([sampler]),
                stopping_criteria=transformers.StoppingCriteriaList([stopper]),
            )

    def _finish(self, row: _Row) -> Completion:
        """Cut the row's recorded tokens at EOS / stop string / max_new and build the Completion."""
        tokens, finish = row.tokens, "length"
        eos_at = next((i for i, t in enumerate(tokens) if t in self._eos_ids), None)
        end = min(len(tokens), row.max_new)
        if eos_at is not None and eos_at < end:
            end, finish = eos_at + 1, "stop"  # keep EOS in token_ids, as vLLM does
        if row.stopped_at is not None and row.stopped_at <= end:
            end, finish = row.stopped_at, "stop"
        kept = tokens[:end]
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        if finish == "stop" and row.stop:
            cut = min((i for i in (text.find(s) for s in row.stop) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        return Completion(
            index=row.index,
            text=text,
            token_ids=tuple(kept),
            finish_reason=finish,
            cumulative_logprob=float(sum(row.logprobs[:end])),
        )

    def metrics(self) -> dict[str, int]:
        """Cumulative counters: requests, prompt_tokens, generated_tokens, cached_prompt_tokens
        (always 0 here), failures."""
        return self._metrics.snapshot()

    def reset_prefix_cache(self) -> None:
        """transformers keeps no prefix cache across calls."""

    def close(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        del model
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def __enter__(self) -> HFSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_row_sampler(
    torch: Any, transformers: Any, rows: list[_Row], device: str, eos_ids: list[int]
) -> Any:
    """A LogitsProcessor that picks every row's next token in one batched step and records each
    row's token and log-probability (under the raw model distribution)."""
    streams = [random.Random(r.seed) for r in rows]  # draw k of a row picks its token k
    sampled = [i for i, r in enumerate(rows) if r.temperature != 0]
    nucleus = [i for i in sampled if rows[i].top_p < 1.0]
    plain = [i for i in sampled if rows[i].top_p >= 1.0]
    temperature = torch.tensor([[r.temperature or 1.0] for r in rows], dtype=torch.float32, device=device)
    top_p = torch.tensor([[r.top_p] for r in rows], dtype=torch.float32, device=device)
    plain_ix = torch.tensor(plain, dtype=torch.long, device=device)
    nucleus_ix = torch.tensor(nucleus, dtype=torch.long, device=device)
    done = [False] * len(rows)  # rows whose sample ended; generate keeps padding them
    filler = eos_ids[0] if eos_ids else 0

    class RowSampler(transformers.LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            scores = scores.float()
            chosen = torch.argmax(scores, dim=-1)  # temperature 0 rows keep it
            if sampled:
                uniform = torch.tensor([s.random() for s in streams], dtype=torch.float32, device=scores.device)
                probs = torch.softmax(scores / temperature, dim=-1)
                if plain:
                    chosen[plain_ix] = _inverse_cdf(torch, probs[plain_ix], uniform[plain_ix])
                if nucleus:
                    chosen[nucleus_ix] = _nucleus(torch, probs[nucleus_ix], top_p[nucleus_ix], uniform[nucleus_ix])
            logprob = torch.log_softmax(scores, dim=-1).gather(1, chosen[:, None])[:, 0]
            # token ids are exact in float32 (< 2**24): one transfer to the host per step
            picked = torch.stack([chosen.float(), logprob], dim=1).tolist()
            ended = []
            for i, row in enumerate(rows):
                if done[i] or row.stopped_at is not None:
                    ended.append(i)
                    continue
                tok = int(picked[i][0])
                row.tokens.append(tok)
                row.logprobs.append(picked[i][1])
                if tok in eos_ids or len(row.tokens) >= row.max_new:
                    done[i] = True
            if ended:
                chosen[torch.tensor(ended, dtype=torch.long, device=chosen.device)] = filler
            out = torch.full_like(scores, float("-inf"))
            out.scatter_(1, chosen[:, None], 0.0)
            return out

    return RowSampler()


def _inverse_cdf(torch: Any, probs: Any, uniform: Any) -> Any:
    """Per row, the first token whose cumulative mass exceeds ``uniform`` x the row's total mass."""
    cdf = torch.cumsum(probs, dim=-1)
    total = cdf[:, -1:]
    pick = torch.searchsorted(cdf, uniform[:, None] * total, right=True)[:, 0]
    # float rounding can put the target at the total: the last token that adds mass, never past it
    return torch.minimum(pick, (cdf < total).sum(dim=-1))


def _nucleus(torch: Any, probs: Any, top_p: Any, uniform: Any) -> Any:
    """Top-p sampling per row: the smallest prefix of the sorted tokens whose mass reaches top_p
    (always at least the top token), then the inverse CDF within it."""
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    drop = torch.cumsum(sorted_probs, dim=-1) - sorted_probs >= top_p
    pick = _inverse_cdf(torch, sorted_probs.masked_fill(drop, 0.0), uniform)
    return order.gather(1, pick[:, None])[:, 0]


def _make_row_stopper(torch: Any, transformers: Any, rows: list[_Row], tokenizer: Any) -> Any:
    """A StoppingCriteria that ends each row at its own max_new or first stop string."""
    # A stop string of B UTF-8 bytes spans at most B tokens (every token is >= 1 byte), so only
    # the newest tokens need decoding each step; the final cut uses the full text.
    windows = [max((len(s.encode("utf-8")) for s in r.stop), default=0) + 2 for r in rows]

    class RowStopper(transformers.StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            flags = []
            for row, window in zip(rows, windows, strict=True):
                n = len(row.tokens)
                if row.stop and row.stopped_at is None and n:
                    tail = tokenizer.decode(row.tokens[-window:], skip_special_tokens=True)
                    if any(s in tail for s in row.stop):
                        row.stopped_at = n
                flags.append(n >= row.max_new or row.stopped_at is not None)
            return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

    return RowStopper()


def _torch_dtype(torch: Any, name: str) -> Any:
    return {
        "auto": "auto",
        "float32": torch.float32,
        "float": torch.float32,
        "float16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
    }[name]


def _context_length(model: Any, tokenizer: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < _NO_LIMIT else None


def _version_at_least(version: str, minimum: tuple[int, int]) -> bool:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= minimum
