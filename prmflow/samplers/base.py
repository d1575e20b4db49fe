"""One interface over the model backends (vLLM offline, transformers, OpenAI-compatible servers).

The pipeline only ever sees :class:`Sampler`: a batch of :class:`SamplingRequest` in, one
:class:`SamplingResult` per request out, in the same order. Per-request failures (a prompt longer
than the context, a server that keeps answering 500) come back as results with ``error`` set, so
one bad row never fails a Beam bundle of thousands. Engines are imported lazily by the backend
modules: importing this module costs nothing and never needs torch or vLLM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Backend = Literal["vllm", "hf", "openai", "fake"]
BACKENDS: tuple[str, ...] = ("vllm", "hf", "openai", "fake")
DTYPES: tuple[str, ...] = ("auto", "float32", "float", "float16", "half", "bfloat16")

# Seeds handed to engines stay below 2**62: torch generators take uint64 and OpenAI-style servers
# validate int64, and vLLM gives sample i of a request the seed ``seed + i``.
_SEED_BITS = 62


@dataclass(frozen=True)
class SamplingRequest:
    """One prompt to sample ``n`` completions for."""

    request_id: str
    """The caller's id (a content hash), echoed back in the result so rows can be joined again."""
    prompt: str
    """Raw prompt text; with ``SamplerConfig.chat_template`` it becomes the user turn of a chat."""
    n: int = 1
    """Number of completions to sample for this prompt."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]; 1 keeps the whole distribution."""
    max_tokens: int = 256
    """Upper bound on generated tokens per completion (also capped by the model's context)."""
    stop: tuple[str, ...] = ()
    """Stop strings: generation ends at the first one, which is not included in the text."""
    seed: int | None = None
    """Sampling seed. ``None`` derives one from ``SamplerConfig.seed`` and ``request_id``, so a rerun
    of the same config reproduces the same samples whatever the batch the request lands in."""
    logprobs: bool = True
    """Compute each completion's ``cumulative_logprob``. It costs throughput (about 16% with vLLM on
    CPU, measured with bench/sampling.py), so stages that don't use it (rollouts) turn it off; the
    completion's ``cumulative_logprob`` is then None. The hf backend computes it regardless."""

    def __post_init__(self) -> None:
        # Accept a list (YAML, JSON) for stop but keep the dataclass hashable and immutable.
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        self._verify_args()

    def _verify_args(self) -> None:
        if not isinstance(self.request_id, str):
            raise ValueError(f"request_id must be a str, got {self.request_id!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a str, got {type(self.prompt).__name__}")
        if not _is_int(self.n) or self.n < 1:
            raise ValueError(f"n must be an int >= 1, got {self.n!r}")
        if not _is_number(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a number >= 0, got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an int >= 1, got {self.max_tokens!r}")
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop must be non-empty strings, got {self.stop!r}")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")


@dataclass(frozen=True)
class Completion:
    """One sampled continuation."""

    index: int
    """Position among the request's ``n`` samples."""
    text: str
    """Generated text, cut before the first stop string."""
    token_ids: tuple[int, ...]
    """Generated token ids (may run past a stop string to the token that completed it; empty when
    an OpenAI-compatible server does not return ids)."""
    finish_reason: str | None
    """"stop" (EOS or a stop string), "length" (max_tokens or context full), or None if unknown."""
    cumulative_logprob: float | None
    """Sum of the sampled tokens' log-probabilities under the model's raw distribution (before
    temperature/top-p), or None when the backend did not report them."""


@dataclass(frozen=True)
class SamplingResult:
    """What came back for one :class:`SamplingRequest`."""

    request_id: str
    completions: tuple[Completion, ...]
    prompt_tokens: int
    cached_prompt_tokens: int
    """Prompt tokens served from the prefix cache (0 if unknown)."""
    error: str | None = None
    """Per-request failure reason, e.g. "prompt_too_long: 300 tokens > max_model_len 256";
    ``completions`` is empty then."""

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Sampler(Protocol):
    """A model backend. Implementations also offer ``metrics()`` (see :class:`SamplerMetrics`)."""

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        """Results in the order of ``requests``; per-request failures are results with ``error``."""
        ...

    def reset_prefix_cache(self) -> None:
        """Empty the engine's prefix cache (a no-op for engines without one)."""
        ...

    def close(self) -> None:
        """Release the engine, threads and connections; idempotent."""
        ...


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """Which backend and model to sample from, and how to run it.

    Engine fields left as None fall back to the engine's own default. Validated on construction, so
    a bad YAML value fails when the pipeline is built, not hours later on a worker.
    """

    backend: Backend = "vllm"
    """"vllm" (offline engine in this process), "hf" (transformers ``generate``), "openai" (any
    OpenAI-compatible ``/v1/completions`` server, e.g. ``vllm.entrypoints.openai.api_server``) or
    "fake" (deterministic arithmetic, no engine: for tests, see ``samplers/fake_backend.py``)."""
    model: str
    """A local model directory, or "builtin:NAME" for a model shipped in ``prmflow/models``. For
    "openai" the resolved string is sent as the request's ``model`` (the server's model name)."""
    seed: int = 0
    """Engine seed, and the root that per-request seeds are derived from when a request has none."""
    chat_template: bool = False
    """Wrap each prompt as a user message and render it with the tokenizer's chat template (for
    "openai", use the server's ``/v1/chat/completions`` instead)."""

    dtype: str = "auto"
    """Weights/activations dtype; "auto": float32 when vLLM runs on a CPU (its CPU kernels lack
    float16 and bfloat16 needs AVX-512), the checkpoint's on a GPU."""
    max_model_len: int | None = None
    """Context length (prompt + generation); None uses the model config's."""
    kv_cache_memory_bytes: int | None = None
    """KV cache size in bytes (vLLM). None: on a CPU, 1/8 of the memory available when the engine
    starts, between 256 MiB and 2 GiB (logged); on a GPU, vLLM's own sizing
    (gpu_memory_utilization)."""
    block_size: int | None = None
    """KV block size in tokens (vLLM). Only whole blocks are prefix-cached. None: 32 on a CPU
    (vLLM's CPU default, 128, never caches a short shared prompt), vLLM's default on a GPU."""
    tensor_parallel_size: int = 1
    """GPUs to shard the model over (vLLM)."""
    gpu_memory_utilization: float | None = None
    """Fraction of GPU memory vLLM may take; None keeps vLLM's default."""
    enforce_eager: bool | None = None
    """Skip CUDA graphs / compilation (vLLM): faster start, slower decode. None: true on a CPU (the
    compilation costs minutes there), vLLM's default (false) on a GPU."""
    enable_prefix_caching: bool = True
    """Reuse KV blocks of shared prompt prefixes (vLLM). Best-of-n sampling shares whole prompts."""
    engine_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    """Extra options passed through as is: to ``vllm.LLM(...)``, to ``from_pretrained`` (hf), or
    merged into each request body (openai; a None value removes a default key)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible API root, including ``/v1``."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (never the key itself, so configs
    can be logged and committed)."""
    max_concurrency: int = 16
    """Requests in flight at once against the server."""
    max_retries: int = 4
    """Retries after the first attempt on 408/429/5xx and connection errors."""
    timeout_s: float = 300.0
    """Per-HTTP-request timeout in seconds."""
    backoff_s: float = 1.0
    """First retry delay; doubles on each retry (a server's Retry-After wins when larger)."""

    model_copies: int | None = None
    """Engines per machine, shared by all of its SDK processes (process i uses copy i % N); None: one
    engine per SDK process. Set it where several SDK processes share a GPU that holds fewer models
    than there are processes (Dataflow starts one SDK process per vCPU); see docs/deploy.md."""

    device: str | None = None
    """Torch device for "hf" ("cpu", "cuda", "cuda:1"); None picks CUDA when available."""
    batch_size: int = 8
    """Rows (prompt x sample) per ``generate`` call for "hf"."""

    def __post_init__(self) -> None:
        # A private copy: the caller's dict can change later without changing a frozen config.
        if self.engine_kwargs is None:  # YAML "engine_kwargs:" with nothing under it
            object.__setattr__(self, "engine_kwargs", {})
        elif isinstance(self.engine_kwargs, Mapping):
            object.__setattr__(self, "engine_kwargs", dict(self.engine_kwargs))
        self._verify_args()

    def _verify_args(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty str, got {self.model!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        for name in ("chat_template", "enforce_eager", "enable_prefix_caching"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "enforce_eager" and value is None):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        for name in ("max_model_len", "kv_cache_memory_bytes", "block_size"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{name} must be an int >= 1 or None, got {value!r}")
        if not _is_int(self.tensor_parallel_size) or self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be an int >= 1, got {self.tensor_parallel_size!r}")
        gmu = self.gpu_memory_utilization
        if gmu is not None and (not _is_number(gmu) or not 0 < gmu <= 1):
            raise ValueError(f"gpu_memory_utilization must be in (0, 1] or None, got {gmu!r}")
        if not isinstance(self.engine_kwargs, dict) or not all(
            isinstance(k, str) for k in self.engine_kwargs
        ):
            raise ValueError(f"engine_kwargs must be a dict with str keys, got {self.engine_kwargs!r}")
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if self.api_key_env is not None and (not isinstance(self.api_key_env, str) or not self.api_key_env):
            raise ValueError(f"api_key_env must be a non-empty str or None, got {self.api_key_env!r}")
        if not _is_int(self.max_concurrency) or self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {self.max_concurrency!r}")
        if not _is_int(self.max_retries) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if not _is_number(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be a number > 0, got {self.timeout_s!r}")
        if not _is_number(self.backoff_s) or self.backoff_s < 0:
            raise ValueError(f"backoff_s must be a number >= 0, got {self.backoff_s!r}")
        if self.device is not None and (not isinstance(self.device, str) or not self.device):
            raise ValueError(f"device must be a non-empty str or None, got {self.device!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.model_copies is not None and (not _is_int(self.model_copies) or self.model_copies < 1):
            raise ValueError(f"model_copies must be an int >= 1 or None, got {self.model_copies!r}")
        if self.backend == "fake":
            from prmflow.samplers.fake_backend import check_options

            check_options(self.engine_kwargs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SamplerConfig:
        """Build from a plain mapping (YAML/JSON); unknown keys are an error, not silently dropped,
        because a misspelt ``kv_cache_memory_byte`` would otherwise start a different engine."""
        if not isinstance(d, Mapping):
            raise ValueError(f"sampler config must be a mapping, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown sampler config keys {unknown}; valid keys are {names}")
        if "model" not in d:
            raise ValueError("sampler config must set 'model'")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The inverse of :meth:`from_dict` (plain, JSON-able values)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["engine_kwargs"] = dict(self.engine_kwargs)
        return out


class SamplerMetrics:
    """Thread-safe cumulative counters shared by the backends (``sampler.metrics()``).

    Beam workers export these as pipeline metrics; cached_prompt_tokens / prompt_tokens is the
    prefix-cache hit rate that decides whether best-of-n batching pays off.
    """

    KEYS: tuple[str, ...] = (
        "requests",
        "prompt_tokens",
        "generated_tokens",
        "cached_prompt_tokens",
        "failures",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.KEYS, 0)

    def record(self, result: SamplingResult, generated_tokens: int | None = None) -> None:
        """Count one finished request; ``generated_tokens`` overrides the count of returned ids
        (servers report usage even when they do not return token ids)."""
        if generated_tokens is None:
            generated_tokens = sum(len(c.token_ids) for c in result.completions)
        with self._lock:
            self._counts["requests"] += 1
            self._counts["prompt_tokens"] += result.prompt_tokens
            self._counts["generated_tokens"] += generated_tokens
            self._counts["cached_prompt_tokens"] += result.cached_prompt_tokens
            self._counts["failures"] += result.error is not None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def derive_seed(config_seed: int, request: SamplingRequest) -> int:
    """The seed a backend samples ``request`` with.

    An explicit ``request.seed`` is used as given, a missing one comes from (config seed, request
    id); either way it is hashed into a 62-bit number, because engines seed sample ``i`` with
    ``seed + i`` and callers tend to number their seeds 0, 1, 2, ..., which would make sample 1 of
    one request identical to sample 0 of the next.
    """
    material = (
        f"seed:{request.seed}" if request.seed is not None else f"auto:{config_seed}:{request.request_id}"
    )
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def engine_totals(results: Sequence[SamplingResult]) -> dict[str, int]:
    """What one engine call did, for the manifest: requests, tokens, cache hits, failures, samples."""
    return {
        "requests": len(results),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "generated_tokens": sum(len(c.token_ids) for r in results for c in r.completions),
        "cached_prompt_tokens": sum(r.cached_prompt_tokens for r in results),
        "failures": sum(1 for r in results if r.error),
        "samples": sum(len(r.completions) for r in results),
    }


def error_result(request: SamplingRequest, error: str, prompt_tokens: int = 0) -> SamplingResult:
    """A failed result: no completions, the reason in ``error``."""
    return SamplingResult(
        request_id=request.request_id,
        completions=(),
        prompt_tokens=prompt_tokens,
        cached_prompt_tokens=0,
        error=error,
    )


def encode_prompt(tokenizer: Any, prompt: str, chat_template: bool) -> list[int]:
    """Prompt token ids exactly as a local engine will see them (the length check and the engine
    must agree): the raw prompt, or the prompt as the user turn of the tokenizer's chat template."""
    if chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer.encode(text, add_special_tokens=False))  # the template carries any BOS
    return list(tokenizer.encode(prompt))


def require_chat_template(config: SamplerConfig, tokenizer: Any) -> None:
    if config.chat_template and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"chat_template is set but the tokenizer of {config.model!r} has no chat template")


def checked_prompt(encode: Any, request: SamplingRequest, max_model_len: int | None) -> list[int] | SamplingResult:
    """The request's prompt ids, or the failed result when it cannot be encoded or leaves no room
    for a single generated token: that row fails alone, its batch goes on."""
    try:
        ids = encode(request.prompt)
    except Exception as e:  # noqa: BLE001 - a template or tokenizer failure is this row's problem only
        return error_result(request, f"tokenize_error: {type(e).__name__}: {e}")
    if max_model_len is not None and len(ids) + 1 > max_model_len:
        return error_result(
            request, f"prompt_too_long: {len(ids)} tokens >= max_model_len {max_model_len}", prompt_tokens=len(ids)
        )
    return ids


class EngineStartError(RuntimeError):
    """A local engine that did not start, as one line naming the config key to set. Raised on the
    worker that builds the engine; ``prmflow run`` finds it in what Beam re-raises
    (:func:`engine_start_error`) and prints it alone, without the engine's log or Beam's traceback."""

    MARKER = "engine did not start"

    def __reduce__(self):
        return EngineStartError, (str(self),)


# (substring of the engine's error, lowercased) -> the key that fixes it; the first match wins
_START_HINTS: tuple[tuple[str, str], ...] = (
    ("max_model_len", "sampler.max_model_len (a shorter context needs less KV cache)"),
    ("max seq len", "sampler.max_model_len (a shorter context needs less KV cache)"),
    ("max_num_batched_tokens", "sampler.max_model_len (a shorter context needs less KV cache)"),
    ("kv cache", "sampler.kv_cache_memory_bytes (and sampler.max_model_len: the cache must hold one "
                 "full-length sequence)"),
    ("kv_cache", "sampler.kv_cache_memory_bytes (and sampler.max_model_len: the cache must hold one "
                 "full-length sequence)"),
    ("out of memory", "sampler.gpu_memory_utilization or sampler.kv_cache_memory_bytes, or a smaller "
                      "sampler.max_model_len"),
    ("memory", "sampler.kv_cache_memory_bytes, or a smaller sampler.max_model_len"),
    ("block_size", "sampler.block_size"),
    ("block size", "sampler.block_size"),
    ("dtype", "sampler.dtype (float32 on CPU)"),
    ("bfloat16", "sampler.dtype (float32 on CPU)"),
    ("float16", "sampler.dtype (float32 on CPU)"),
    ("chat template", "sampler.chat_template (false for a model without one)"),
    ("compile", "sampler.enforce_eager: true"),
    ("cuda graph", "sampler.enforce_eager: true"),
    ("triton", "sampler.enforce_eager: true"),
    ("tensor_parallel", "sampler.tensor_parallel_size"),
    ("config.json", "sampler.model (a local model directory with config.json)"),
    ("tokenizer", "sampler.model (its directory needs the tokenizer files)"),
)


_LOG_HINT = " (-v shows the engine's log)"


def engine_start_failure(backend: str, model: str, error: BaseException) -> EngineStartError:
    """``error`` from an engine's constructor as one line: what failed and the key to set."""
    text = " ".join(str(error).split()) or type(error).__name__
    low = text.lower()
    key = next((hint for needle, hint in _START_HINTS if needle in low),
               "sampler.engine_kwargs, or one of the engine keys (prmflow config --defaults)")
    if len(text) > 300:
        text = text[:297] + "..."
    return EngineStartError(f"the {backend} {EngineStartError.MARKER} for model {model!r}: "
                            f"{type(error).__name__}: {text}; set {key}{_LOG_HINT}")


def engine_start_error(error: BaseException) -> str | None:
    """The EngineStartError line inside ``error`` (its cause chain, or the text Beam wrapped it in,
    with Beam's "[while running ...]" suffix cut), or None when the failure is something else."""
    seen: set[int] = set()
    e: BaseException | None = error
    text = None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, EngineStartError):
            text = str(e)
            break
        e = e.__cause__ or e.__context__
    text = str(error) if text is None else text
    at = text.find(EngineStartError.MARKER)
    if at < 0:
        return None
    line = text[text.rfind("the ", 0, at):].split("\n", 1)[0]
    end = line.find(_LOG_HINT)
    return line[: end + len(_LOG_HINT)] if end >= 0 else line


def make_sampler(config: SamplerConfig | Mapping[str, Any]) -> Sampler:
    """Build (and load) the backend named by ``config.backend``.

    Backends are imported here, not at module import, so a pipeline that only uses "openai" never
    needs torch, and a missing engine fails with the ``pip install`` line that fixes it.
    """
    if not isinstance(config, SamplerConfig):
        config = SamplerConfig.from_dict(config)
    if config.backend == "vllm":
        from prmflow.samplers.vllm_backend import VLLMSampler

        return VLLMSampler(config)
    if config.backend == "hf":
        from prmflow.samplers.hf_backend import HFSampler

        return HFSampler(config)
    if config.backend == "fake":
        from prmflow.samplers.fake_backend import FakeSampler

        return FakeSampler(config)
    from prmflow.samplers.openai_backend import OpenAISampler

    return OpenAISampler(config)


def resolve_model(model: str) -> str:
    """``builtin:NAME`` → the shipped directory; anything else unchanged (an OpenAI-compatible
    server's model name; lazy import: the models package may not be importable in a minimal install)."""
    from prmflow.models import resolve_model_path

    return resolve_model_path(model)


def resolve_local_model(model: str) -> str:
    """The directory a local engine (vllm, hf) loads: ``builtin:NAME`` or an existing directory.
    Nothing is ever fetched from a model hub: a hub repo id is an error here, never a download."""
    import os

    path = resolve_model(model)
    if not os.path.isdir(path):
        raise ValueError(
            f"model must be a local model directory or builtin:NAME (nothing is downloaded at run time), got {model!r}"
        )
    return path


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
