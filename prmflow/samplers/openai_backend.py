"""Any OpenAI-compatible ``/v1/completions`` server behind the :class:`~prmflow.samplers.base.Sampler`
interface (a ``vllm.entrypoints.openai.api_server``, a hosted endpoint, ...).

One HTTP request per :class:`SamplingRequest` (``n`` samples in one body, so the server can share
the prompt's KV), at most ``max_concurrency`` in flight, retried with exponential backoff on
408/429/5xx and transport errors. Whatever still fails becomes that request's ``error``; a dead
server yields a batch of error results, never an exception, so a Beam bundle can record them and
move on.

The HTTP work runs on a private event loop in a daemon thread owned by the sampler. ``generate``
is synchronous and may be called from any thread, including one that already runs an event loop
(where ``asyncio.run`` would refuse); the connection pool survives between calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import os
import random
import threading
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from prmflow.samplers.base import (
    Completion,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    derive_seed,
    error_result,
    resolve_model,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'prmflow[openai]'"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Longest server-provided Retry-After we honour; beyond it the server is as good as down.
_MAX_RETRY_AFTER_S = 60.0
_ERROR_BODY_CHARS = 300
_T = TypeVar("_T")


def import_httpx() -> Any:
    try:
        import httpx
    except ImportError as e:
        raise ImportError(f"the 'openai' sampler backend needs httpx: {INSTALL_HINT} ({e})") from e
    return httpx


class _RequestFailed(Exception):
    """A final, reportable failure of one request (reason already formatted)."""


class OpenAISampler:
    """Samples from an OpenAI-compatible server.

    ``SamplerConfig.engine_kwargs`` is merged into every request body, e.g.
    ``{"return_token_ids": True}`` to get token ids from a vLLM server, or ``{"top_k": 20}``; a key
    set to None removes a default (``{"logprobs": None}`` for servers without logprobs).
    """

    def __init__(self, config: SamplerConfig) -> None:
        if config.backend != "openai":
            raise ValueError(f"backend must be 'openai' for OpenAISampler, got {config.backend!r}")
        self._httpx = import_httpx()
        self.config = config
        self.model = resolve_model(config.model)
        self._metrics = SamplerMetrics()
        self._headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(
                    f"api_key_env names {config.api_key_env!r}, but that environment variable is not set"
                )
            self._headers["Authorization"] = f"Bearer {key}"
        self._base_url = config.base_url.rstrip("/")
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._closed = False

    # -- event loop plumbing -------------------------------------------------------------------

    def _run(self, make_coro: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run ``make_coro()`` on the private loop and wait for it from the calling thread (the
        coroutine is created only once the loop exists, so a refusal leaves none un-awaited)."""
        loop = self._ensure_loop()
        if _running_loop() is loop:  # would deadlock: generate() called from our own callbacks
            raise RuntimeError("OpenAISampler.generate must not be called from its own event loop")
        return asyncio.run_coroutine_threadsafe(make_coro(), loop).result()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("sampler is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="prmflow-openai-sampler", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
                # The client and semaphore must be created on the loop that uses them.
                asyncio.run_coroutine_threadsafe(self._open(), loop).result()
            return self._loop

    async def _open(self) -> None:
        httpx = self._httpx
        limit = self.config.max_concurrency
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            headers=self._headers,
            # Environment proxies serve remote endpoints; they must not intercept a local server.
            trust_env=not _is_loopback(self._base_url),
        )
        self._semaphore = asyncio.Semaphore(limit)

    # -- sampling -------------------------------------------------------------------------------

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        """Results in request order; failures (after retries) are results with ``error``. Safe to
        call from any thread, with or without a running event loop."""
        if not requests:
            return []
        batch = list(requests)
        return self._run(lambda: self._generate_all(batch))

    async def _generate_all(self, requests: list[SamplingRequest]) -> list[SamplingResult]:
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: SamplingRequest) -> SamplingResult:
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                data = await self._post_with_retries(self._endpoint(), self._body(request))
                result, generated = _parse(request, data, chat=self.config.chat_template)
            except _RequestFailed as e:
                result, generated = error_result(request, str(e)), 0
            except Exception as e:  # a malformed answer fails this request, not the batch
                result, generated = error_result(request, f"bad_response: {type(e).__name__}: {e}"), 0
        self._metrics.record(result, generated_tokens=generated)
        return result

    def _endpoint(self) -> str:
        return (
            f"{self._base_url}/chat/completions"
            if self.config.chat_template
            else f"{self._base_url}/completions"
        )

    def _body(self, request: SamplingRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": request.n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "seed": derive_seed(self.config.seed, request),
        }
        if request.logprobs:
            body["logprobs"] = 0  # only the sampled tokens: enough for cumulative_logprob
        if self.config.chat_template:
            body["messages"] = [{"role": "user", "content": request.prompt}]
            if request.logprobs:
                body["logprobs"] = True  # the chat API takes a bool here
        else:
            body["prompt"] = request.prompt
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(self.config.engine_kwargs)
        return {k: v for k, v in body.items() if v is not None}

    async def _post_with_retries(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        httpx = self._httpx
        attempts = self.config.max_retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = await self._client.post(url, json=body)
            except httpx.TimeoutException as e:
                reason = f"timeout: {type(e).__name__} after {self.config.timeout_s}s ({url})"
            except httpx.ConnectError as e:
                reason = f"connect_error: {e or type(e).__name__} ({url})"
            except httpx.TransportError as e:
                reason = f"transport_error: {type(e).__name__}: {e} ({url})"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as e:
                        raise _RequestFailed(f"bad_response: invalid JSON ({e})") from e
                reason = f"http_{response.status_code}: {_snippet(response.text)}"
                if response.status_code not in RETRY_STATUS:
                    raise _RequestFailed(reason)  # 4xx: the request itself is wrong; retrying won't help
                retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt + 1 < attempts:
                delay = (
                    self.config.backoff_s * 2**attempt * (1 + random.random() * 0.25)
                )  # jitter: no thundering herd
                if retry_after is not None:
                    delay = max(delay, min(retry_after, _MAX_RETRY_AFTER_S))
                log.debug("retrying %s in %.2fs after %s", url, delay, reason)
                await asyncio.sleep(delay)
        raise _RequestFailed(f"{reason} (after {attempts} attempts)" if attempts > 1 else reason)

    def metrics(self) -> dict[str, int]:
        """Cumulative counters: requests, prompt_tokens, generated_tokens (from the server's usage),
        cached_prompt_tokens (usage.prompt_tokens_details.cached_tokens, when reported), failures."""
        return self._metrics.snapshot()

    def reset_prefix_cache(self) -> None:
        """A server's cache is the server's: a client cannot reset it."""

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        if self._client is not None:
            fut: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
                self._client.aclose(), loop
            )
            try:
                fut.result(timeout=10)
            except Exception as e:  # closing is best effort
                log.debug("closing the HTTP client: %s", e)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> OpenAISampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(request: SamplingRequest, data: dict[str, Any], *, chat: bool) -> tuple[SamplingResult, int]:
    """A completions (or chat completions) response → result, plus generated tokens from usage."""
    completions = []
    for choice in sorted(data["choices"], key=lambda c: c.get("index", 0)):
        text = (choice["message"]["content"] or "") if chat else choice["text"]
        completions.append(
            Completion(
                index=int(choice.get("index", 0)),
                text=text,
                token_ids=tuple(choice.get("token_ids") or ()),
                finish_reason=choice.get("finish_reason"),
                cumulative_logprob=_cumulative_logprob(choice.get("logprobs"), chat=chat),
            )
        )
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    generated = usage.get("completion_tokens")
    if generated is None:
        generated = sum(len(c.token_ids) for c in completions)
    result = SamplingResult(
        request_id=request.request_id,
        completions=tuple(completions),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        cached_prompt_tokens=int(details.get("cached_tokens") or 0),
    )
    return result, int(generated)


def _cumulative_logprob(logprobs: dict[str, Any] | None, *, chat: bool) -> float | None:
    if not logprobs:
        return None
    if chat:
        values = [t.get("logprob") for t in logprobs.get("content") or ()]
    else:
        values = list(logprobs.get("token_logprobs") or ())
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: rare for inference servers; use our own backoff
        return None


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_BODY_CHARS else text[:_ERROR_BODY_CHARS] + "..."


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
