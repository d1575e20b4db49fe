"""The in-process vLLM backend on the tiny model (one engine shared by the module)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from prmflow.samplers import SamplingRequest, VLLMSampler

pytestmark = pytest.mark.engine

# 84 tokens with the tiny tokenizer: two whole 32-token blocks are shareable.
PREFIX = (
    "Ada has 12 apples and buys 30 more. How many apples now? Step 1: 12 + 30 = 42. Step 2: 42 * 2 = 84. " * 2
)


def texts(result: Any) -> list[str]:
    return [c.text for c in result.completions]


def ascii_stop(text: str) -> str | None:
    """A 2+ character alphanumeric run from the middle of ``text``, usable as a stop string."""
    runs = [m.group() for m in re.finditer(r"[A-Za-z0-9]{2,}", text[3:])]
    return runs[len(runs) // 2] if runs else None


def test_per_request_seeds_are_on_for_cpu(vllm_sampler: VLLMSampler) -> None:
    assert vllm_sampler.per_request_seeds
    assert vllm_sampler.max_model_len == 256


def test_same_seed_same_text_in_any_batch(vllm_sampler: VLLMSampler) -> None:
    req = SamplingRequest("r", "Ben has 3 pencils.", n=2, max_tokens=24, seed=11)
    other = SamplingRequest("o", "Cleo sells 9 shells.", n=3, max_tokens=24, seed=12)
    first = vllm_sampler.generate([req])[0]
    again = vllm_sampler.generate([other, req])[1]
    assert first.error is None and len(first.completions) == 2
    assert texts(first) == texts(again)
    assert [c.token_ids for c in first.completions] == [c.token_ids for c in again.completions]
    reseeded = vllm_sampler.generate([dataclasses.replace(req, seed=13)])[0]
    assert texts(reseeded) != texts(first)


def test_seed_defaults_to_config_seed_and_request_id(vllm_sampler: VLLMSampler) -> None:
    a = SamplingRequest("id-1", "Dan finds 4 coins.", max_tokens=16)
    b = dataclasses.replace(a, request_id="id-2")
    ra, ra2, rb = vllm_sampler.generate([a, a, b])
    assert texts(ra) == texts(ra2)
    assert texts(ra) != texts(rb)


def test_n_samples_are_distinct_and_indexed(vllm_sampler: VLLMSampler) -> None:
    result = vllm_sampler.generate(
        [SamplingRequest("n4", "Eve eats 5 cookies.", n=4, max_tokens=16, seed=1)]
    )[0]
    assert [c.index for c in result.completions] == [0, 1, 2, 3]
    assert len(set(texts(result))) == 4
    for c in result.completions:
        assert c.finish_reason in ("stop", "length")
        assert c.cumulative_logprob is not None and c.cumulative_logprob < 0
        assert 1 <= len(c.token_ids) <= 16


def test_shared_prefix_hits_the_prefix_cache(vllm_sampler: VLLMSampler) -> None:
    before = vllm_sampler.metrics()
    requests = [SamplingRequest(f"p{i}", PREFIX + f"Question {i}:", max_tokens=4, seed=i) for i in range(4)]
    results = vllm_sampler.generate(requests)
    assert all(r.error is None for r in results)
    assert all(r.prompt_tokens > 64 for r in results)
    assert sum(r.cached_prompt_tokens for r in results) >= 3 * 64
    after = vllm_sampler.metrics()
    assert after["cached_prompt_tokens"] - before["cached_prompt_tokens"] == sum(
        r.cached_prompt_tokens for r in results
    )
    assert after["requests"] - before["requests"] == 4


def test_too_long_prompt_fails_alone(vllm_sampler: VLLMSampler, tiny_tokenizer: Any) -> None:
    long_prompt = "Gus has 7 books. " * 60
    n_tokens = len(tiny_tokenizer(long_prompt)["input_ids"])
    assert n_tokens > 256
    failures_before = vllm_sampler.metrics()["failures"]
    requests = [
        SamplingRequest("ok-1", "Hana has 2 marbles.", max_tokens=8, seed=1),
        SamplingRequest("long", long_prompt, max_tokens=8),
        SamplingRequest("ok-2", "Ivy has 8 coins.", max_tokens=8, seed=2),
    ]
    ok1, long, ok2 = vllm_sampler.generate(requests)
    assert [ok1.request_id, long.request_id, ok2.request_id] == ["ok-1", "long", "ok-2"]
    assert long.completions == () and long.error == f"prompt_too_long: {n_tokens} tokens >= max_model_len 256"
    assert long.prompt_tokens == n_tokens
    assert ok1.error is None and ok2.error is None and ok1.completions and ok2.completions
    assert vllm_sampler.metrics()["failures"] == failures_before + 1


def test_generation_is_capped_by_the_context(vllm_sampler: VLLMSampler, tiny_tokenizer: Any) -> None:
    prompt = "Jon"
    while len(tiny_tokenizer(prompt + " has 1 shell.")["input_ids"]) < 240:  # little room left in 256
        prompt += " has 1 shell."
    result = vllm_sampler.generate([SamplingRequest("cap", prompt, max_tokens=200, seed=3, temperature=0)])[0]
    assert result.error is None
    c = result.completions[0]
    assert result.prompt_tokens + len(c.token_ids) <= 256


def test_stop_string_cuts_text(vllm_sampler: VLLMSampler) -> None:
    req = SamplingRequest("s", "Finn collects 6 stickers.", max_tokens=48, seed=5)
    full = vllm_sampler.generate([req])[0].completions[0]
    stop = ascii_stop(full.text)
    assert stop is not None, full.text
    cut = vllm_sampler.generate([dataclasses.replace(req, stop=(stop,))])[0].completions[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]
    assert len(cut.token_ids) <= len(full.token_ids)


def test_greedy_ignores_the_seed(vllm_sampler: VLLMSampler) -> None:
    a = SamplingRequest("g1", "Ada has 12 apples.", max_tokens=16, temperature=0, seed=1)
    b = dataclasses.replace(a, request_id="g2", seed=2)
    ra, rb = vllm_sampler.generate([a, b])
    assert texts(ra) == texts(rb)


def test_chat_template_on_a_shared_engine(vllm_sampler: VLLMSampler, tiny_tokenizer: Any) -> None:
    chat = VLLMSampler(dataclasses.replace(vllm_sampler.config, chat_template=True), llm=vllm_sampler.llm)
    prompt = "Ben has 3 pencils."
    rendered = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|user|>Ben has 3 pencils.</s><|assistant|>"
    expected = tiny_tokenizer(rendered, add_special_tokens=False)["input_ids"]
    result = chat.generate([SamplingRequest("c", prompt, max_tokens=8, seed=1)])[0]
    assert result.error is None
    assert result.prompt_tokens == len(expected)
    chat.close()  # does not shut the shared engine down
    assert vllm_sampler.generate([SamplingRequest("after", prompt, max_tokens=2)])[0].error is None


class _RejectingLLM:
    """The shared engine, except that it rejects (as vLLM's request validation does, with a
    ValueError) any batch holding a prompt that contains ``bad_token``."""

    def __init__(self, llm: Any, bad_token: int) -> None:
        self._llm, self._bad = llm, bad_token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def generate(self, prompts: list[Any], params: Any, **kwargs: Any) -> Any:
        if any(self._bad in p["prompt_token_ids"] for p in prompts):
            raise ValueError("rejected by the engine")
        return self._llm.generate(prompts, params, **kwargs)


def test_engine_rejection_fails_only_that_request(vllm_sampler: VLLMSampler, tiny_tokenizer: Any) -> None:
    bad_token = tiny_tokenizer.convert_tokens_to_ids("<|system|>")
    sampler = VLLMSampler(vllm_sampler.config, llm=_RejectingLLM(vllm_sampler.llm, bad_token))
    requests = [
        SamplingRequest("ok-1", "Hana has 2 marbles.", max_tokens=4, seed=1),
        SamplingRequest("bad", "<|system|> Ivy has 8 coins.", max_tokens=4),
        SamplingRequest("ok-2", "Ivy has 8 coins.", max_tokens=4, seed=2),
    ]
    ok1, bad, ok2 = sampler.generate(requests)
    assert bad.error == "engine_rejected: rejected by the engine" and bad.completions == ()
    assert ok1.completions and ok2.completions and ok1.error is None and ok2.error is None
    assert [c.text for c in ok1.completions] == [
        c.text for c in vllm_sampler.generate(requests[:1])[0].completions
    ]


@pytest.fixture(scope="module")
def chunked_sampler(vllm_sampler: VLLMSampler) -> Any:
    """A second engine that forces chunked prefill on CPU with a 64-token step budget, so 84-token
    prompts are split: the setting where vLLM's per-request seeds crash on CPU."""
    chunked = {"enable_chunked_prefill": True, "max_num_batched_tokens": 64, "max_num_seqs": 16}
    sampler = VLLMSampler(dataclasses.replace(vllm_sampler.config, engine_kwargs=chunked))
    yield sampler
    sampler.close()


def test_chunked_prefill_falls_back_to_batch_reproducibility(chunked_sampler: VLLMSampler) -> None:
    assert not chunked_sampler.per_request_seeds
    requests = [
        SamplingRequest(f"c{i}", PREFIX + f"Question {i}:", n=2, max_tokens=12, seed=i) for i in range(3)
    ]
    first = chunked_sampler.generate(requests)  # would raise "CPU Generator does not use offset" if seeded
    again = chunked_sampler.generate(requests)
    assert all(r.error is None for r in first)
    assert [texts(r) for r in first] == [texts(r) for r in again]


def test_logprobs_off_gives_same_text_without_logprob(vllm_sampler: VLLMSampler) -> None:
    """Rollouts turn logprobs off (they cost ~16% throughput); the sampled text must not change."""
    on = SamplingRequest(request_id="lp", prompt="the cat sat on", n=2, max_tokens=8, seed=5)
    off = dataclasses.replace(on, logprobs=False)
    a, b = vllm_sampler.generate([on, off])
    assert [c.text for c in a.completions] == [c.text for c in b.completions]
    assert all(c.cumulative_logprob is not None for c in a.completions)
    assert all(c.cumulative_logprob is None for c in b.completions)
