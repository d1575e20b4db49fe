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
``max_model_len``, a per-call ``delay_s`` (for tests that stop a run mid-stage), and injected per-request failures: a prompt containing ``[fake-error: REASON]``
comes back as a result with error "REASON: injected by the fake backend".

The fake is also a judge of its own arithmetic (see "Fake judge" below): a prompt rendered from one
of the builtin judge templates (``prmflow/judge``) gets a verdict instead of a solution.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prmflow.judge.prompt import builtin_kind_of
from prmflow.samplers.base import (
    Completion,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    derive_seed,
    error_result,
)

OPTIONS = {"step_error": 0.2, "delay_s": 0.0, "judge_error": 0.1, "judge_echo": False}
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
    d = options.get("delay_s", OPTIONS["delay_s"])
    if not isinstance(d, (int, float)) or isinstance(d, bool) or not 0 <= d <= 60:
        raise ValueError(f"engine_kwargs.delay_s must be a number in [0, 60], got {d!r}")
    q = options.get("judge_error", OPTIONS["judge_error"])
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 <= q <= 1:
        raise ValueError(f"engine_kwargs.judge_error must be a number in [0, 1], got {q!r}")
    echo = options.get("judge_echo", OPTIONS["judge_echo"])
    if not isinstance(echo, bool):
        raise ValueError(f"engine_kwargs.judge_echo must be true or false, got {echo!r}")


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
        self.judge_error = float(config.engine_kwargs.get("judge_error", OPTIONS["judge_error"]))
        self.judge_echo = bool(config.engine_kwargs.get("judge_echo", OPTIONS["judge_echo"]))
        self.delay_s = float(config.engine_kwargs.get("delay_s", OPTIONS["delay_s"]))
        """Seconds each generate call takes (tests that stop a run mid-stage need a stage that lasts)."""
        self.max_model_len = config.max_model_len
        self._metrics = SamplerMetrics()
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        with self._lock:
            if self.delay_s:
                time.sleep(self.delay_s)
            results = [self._one(r) for r in requests]
            for r in results:
                self._metrics.record(r)
            return results

    def _one(self, request: SamplingRequest) -> SamplingResult:
        injected = _ERROR.search(request.prompt)
        if injected:
            return error_result(request, f"{injected.group(1)}: injected by the fake backend")
        if request.prompt.startswith(_SPLIT_HEAD):
            return _split_steps(request)
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
        kind = builtin_kind_of(request.prompt)
        if kind is not None:
            if self.judge_echo:
                return _finish(request, index, request.prompt, 0.0)
            text, logprob = judge_answer(kind, request.prompt, rng, self.judge_error if request.temperature > 0 else 0.0)
            return _finish(request, index, text, logprob)
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
        return _finish(request, index, lead + "\n".join(lines), logprob)

    def metrics(self) -> dict[str, int]:
        return self._metrics.snapshot()

    def reset_prefix_cache(self) -> None:
        """The fake has no cache."""

    def close(self) -> None:
        """Nothing to release."""


# -- the fake step splitter (segment: {strategy: model}) ---------------------------------------

_SPLIT_HEAD = "Split the reasoning below into steps."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def _split_steps(request: SamplingRequest) -> SamplingResult:
    """Answer a split prompt like a faithful splitter: one step per sentence, text unchanged."""
    body = request.prompt.split("Reasoning:\n", 1)[-1].rsplit("\n\nSteps:\n", 1)[0]
    pieces = [p for p in _SENTENCE_END.split(body) if p.strip()]
    text = "".join(f"<step>\n{p}\n" for p in pieces)
    words = text.split(" ")
    token_ids = tuple(hash_token(w) for w in words if w)
    return SamplingResult(request.request_id, (Completion(0, text, token_ids, "stop", None),),
                          len(request.prompt.split()), cached_prompt_tokens=0)


def _finish(request: SamplingRequest, index: int, text: str, logprob: float) -> Completion:
    """The completion as an engine returns it: cut at the first stop string and at max_tokens."""
    finish = "stop"
    for s in request.stop:
        if s in text:
            text = text[: text.index(s)]
    words = text.split(" ")
    if len(words) > request.max_tokens:
        text, finish = " ".join(words[: request.max_tokens]), "length"
    token_ids = tuple(hash_token(w) for w in text.split(" ") if w)
    return Completion(index, text, token_ids, finish, logprob if request.logprobs else None)


def hash_token(word: str) -> int:
    """A stable small id per whitespace token (Python's hash() is salted per process)."""
    return sum(ord(c) * 31**i for i, c in enumerate(word[:8])) % 50_000


# --- Fake judge --------------------------------------------------------------------------------------
# A judge of the fake policy's arithmetic, for prompts rendered from a builtin judge template. It reads
# the paragraphs (or the solution) out of the prompt and checks each "Step i: a + b = c" line: a wrong
# sum, or an a that is not the previous line's c, is an error, and so is a "The answer is N." that is
# not the running total. The first-error templates get the first wrong paragraph (-1 if none); the
# outcome templates get "right" iff nothing is wrong and the final answer equals the reference
# (answer-equivalence) or the sum of the problem's integers, the fake policy's right answer (rubric).
# With probability judge_error (at temperature > 0, like step_error) the verdict is a wrong one: another
# index drawn uniformly, or the other outcome. judge_echo answers every judge prompt with the prompt
# itself, for the injection tests: an echo must never parse to a verdict the solution wrote.

_PARAGRAPH = re.compile(r"<paragraph_(\d+)>\n(.*?)\n</paragraph_\1>", re.DOTALL)
_FINAL = re.compile(r"^The answer is (-?\d+)\.?\s*$", re.MULTILINE)


def _block(prompt: str, tag: str) -> str:
    """The content of the last <tag>...</tag> block of ``prompt`` ("" when there is none)."""
    start = prompt.rfind(f"<{tag}>\n")
    end = prompt.find(f"\n</{tag}>", start)
    return "" if start < 0 or end < 0 else prompt[start + len(tag) + 3:end]


def _after_header(prompt: str, header: str) -> str:
    at = prompt.rfind(header)
    return "" if at < 0 else prompt[at + len(header):]


class _Checker:
    """Walks solution text line by line, remembering the running total."""

    def __init__(self) -> None:
        self.total = 0
        self.answer: int | None = None

    def wrong(self, text: str) -> bool:
        for line in text.splitlines():
            m = _STEP.fullmatch(line.strip())
            if m:
                a, b, c = int(m.group(2)), int(m.group(3)), int(m.group(4))
                if a != self.total or a + b != c:
                    return True
                self.total = c
                continue
            final = _FINAL.fullmatch(line.strip())
            if final:
                self.answer = int(final.group(1))
                if self.answer != self.total:
                    return True
        return False


def _first_error(paragraphs: list[str]) -> int:
    checker = _Checker()
    for i, paragraph in enumerate(paragraphs):
        if checker.wrong(paragraph):
            return i
    return -1


def judge_answer(kind: str, prompt: str, rng: random.Random, error: float) -> tuple[str, float]:
    """(the fake judge's answer to a ``kind`` judge prompt, its log-probability)."""
    slip = rng.random() < error
    logprob = math.log(error if slip else 1 - error) if 0 < error < 1 else 0.0
    if kind in ("first-error", "paragraph-analysis"):
        solution = _after_header(prompt, "[Solution]")
        paragraphs = [m.group(2) for m in _PARAGRAPH.finditer(solution)]
        k = _first_error(paragraphs)
        if slip:
            others = [j for j in range(-1, len(paragraphs)) if j != k]
            k = rng.choice(others) if others else k
        if kind == "first-error":
            said = "No paragraph contains an error." if k == -1 else f"The earliest error is in paragraph {k}."
            return f"{said}\n\n\\boxed{{{k}}}", logprob
        last = len(paragraphs) - 1 if k == -1 else k
        analyses = [
            f"<analysis_{i}>\nParagraph {i} {'is wrong: its sum does not hold' if i == k else 'checks out'}.\n</analysis_{i}>"
            for i in range(last + 1)
        ]
        verdict = "Correct" if k == -1 else "Incorrect"
        return "\n\n".join([*analyses, f"<conclusion>\n{verdict}\n</conclusion>"]), logprob
    checker = _Checker()
    right = not checker.wrong(_block(prompt, "solution")) and checker.answer is not None
    if kind == "answer-equivalence":
        right = right and str(checker.answer) == _block(prompt, "reference_answer").strip()
    else:
        right = right and str(checker.answer) == fake_answer(_block(prompt, "problem") or "0")
    if slip:
        right = not right
    if kind == "answer-equivalence":
        return f"The final answers {'match' if right else 'differ'}.\n\n\\boxed{{{'Yes' if right else 'No'}}}", logprob
    return f"<conclusion>\n{'Correct' if right else 'Incorrect'}\n</conclusion>", logprob
