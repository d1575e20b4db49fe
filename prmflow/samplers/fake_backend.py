"""``fake``: a deterministic policy with no engine, for tests that exercise whole pipelines in
milliseconds while keeping Monte-Carlo values meaningful.

The fake "solves" a problem by adding up the integers of its question, one step per integer::

    Step 1: 0 + 3 = 3
    Step 2: 3 + 5 = 8
    Step 3: 8 + 9 = 17
    The answer is 17.

Each new step slips (its result is one too high, and the error carries forward) with probability
``step_error`` (``sampler.engine_kwargs: {step_error: 0.2}``; 0 at temperature 0). So a solution is
right iff none of its steps slipped, and a rollout from a start state behaves like a real policy's:
from a clean prefix with r steps to go it succeeds with probability ``(1 - step_error) ** r``, from a
prefix past an error never. The right answer is :func:`fake_answer` of the problem text: give the
problems of a fake run that reference answer. The question is everything before the first
``Step`` line of the prompt, so a template with digits (few-shot examples) changes the answer.

Everything a real backend does that a pipeline depends on is here: ``n`` samples per request from a
seed derived like vLLM's (sample i uses seed + i), ``max_tokens`` (whitespace tokens) with
``finish_reason`` "length", stop strings, ``prompt_too_long`` when the prompt does not fit
``max_model_len``, and injected per-request failures: a prompt containing ``[fake-error: REASON]``
comes back as a result with error "REASON: injected by the fake backend".
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from prmflow.samplers.base import (
    Completion,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    derive_seed,
    error_result,
)

OPTIONS = {"step_error": 0.2}
"""engine_kwargs the fake understands, with their defaults."""

_STEP = re.compile(r"^Step (\d+): (-?\d+) \+ (-?\d+) = (-?\d+)\s*$", re.MULTILINE)
_STEP_START = re.compile(r"^Step \d+:", re.MULTILINE)
_INT = re.compile(r"(?<![\w.])-?\d+(?!\w|\.\d)")
_ERROR = re.compile(r"\[fake-error: ([a-z0-9_]+)\]")


def check_options(options: Mapping[str, Any]) -> None:
    """ValueError naming the option unless ``options`` are valid fake engine_kwargs."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"engine_kwargs has unknown keys {unknown} for backend 'fake'; allowed: {sorted(OPTIONS)}")
    p = options.get("step_error", OPTIONS["step_error"])
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"engine_kwargs.step_error must be a number in [0, 1], got {p!r}")


def question_of(text: str) -> str:
    """The part of a prompt before its first ``Step`` line."""
    m = _STEP_START.search(text)
    return text if m is None else text[: m.start()]


def addends(text: str) -> list[int]:
    return [int(x) for x in _INT.findall(question_of(text))] or [0]


def fake_answer(problem_text: str) -> str:
    """The fake policy's right answer to a problem: the sum of the integers in its question."""
    return str(sum(addends(problem_text)))


class FakeSampler:
    """The :class:`~prmflow.samplers.base.Sampler` interface over the arithmetic above."""

    def __init__(self, config: SamplerConfig) -> None:
        if config.backend != "fake":
            raise ValueError(f"backend must be 'fake' for FakeSampler, got {config.backend!r}")
        check_options(config.engine_kwargs)
        self.config = config
        self.step_error = float(config.engine_kwargs.get("step_error", OPTIONS["step_error"]))
        self.max_model_len = config.max_model_len
        self._metrics = SamplerMetrics()
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        with self._lock:
            results = [self._one(r) for r in requests]
            for r in results:
                self._metrics.record(r)
            return results

    def _one(self, request: SamplingRequest) -> SamplingResult:
        injected = _ERROR.search(request.prompt)
        if injected:
            return error_result(request, f"{injected.group(1)}: injected by the fake backend")
        prompt_tokens = len(request.prompt.split())
        if self.max_model_len is not None and prompt_tokens + 1 > self.max_model_len:
            return error_result(
                request, f"prompt_too_long: {prompt_tokens} tokens >= max_model_len {self.max_model_len}",
                prompt_tokens=prompt_tokens,
            )
        seed = derive_seed(self.config.seed, request)
        completions = tuple(self._complete(request, index, random.Random(seed + index)) for index in range(request.n))
        return SamplingResult(request.request_id, completions, prompt_tokens, cached_prompt_tokens=0)

    def _complete(self, request: SamplingRequest, index: int, rng: random.Random) -> Completion:
        numbers = addends(request.prompt)
        done = _STEP.findall(request.prompt)
        total = int(done[-1][3]) if done else 0
        p = self.step_error if request.temperature > 0 else 0.0
        logprob = 0.0
        lines = []
        # A prompt that does not end a line continues it: the first new step starts on a new line.
        lead = "" if not done or request.prompt.endswith("\n") else "\n"
        for i in range(len(done), len(numbers)):
            slip = rng.random() < p
            logprob += math.log(p if slip else 1 - p) if 0 < p < 1 else 0.0
            value = total + numbers[i] + (1 if slip else 0)
            lines.append(f"Step {i + 1}: {total} + {numbers[i]} = {value}")
            total = value
        lines.append(f"The answer is {total}.")
        text, finish = lead + "\n".join(lines), "stop"
        for s in request.stop:
            if s in text:
                text = text[: text.index(s)]
        words = text.split(" ")
        if len(words) > request.max_tokens:
            text, finish = " ".join(words[: request.max_tokens]), "length"
        token_ids = tuple(hash_token(w) for w in text.split(" ") if w)
        return Completion(index, text, token_ids, finish, logprob if request.logprobs else None)

    def metrics(self) -> dict[str, int]:
        return self._metrics.snapshot()

    def reset_prefix_cache(self) -> None:
        """The fake has no cache."""

    def close(self) -> None:
        """Nothing to release."""


def hash_token(word: str) -> int:
    """A stable small id per whitespace token (Python's hash() is salted per process)."""
    return sum(ord(c) * 31**i for i, c in enumerate(word[:8])) % 50_000
