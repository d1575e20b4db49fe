"""The OpenAI-compatible backend: failure paths against tiny local HTTP servers (fast, no engine),
then the real thing against ``vllm.entrypoints.openai.api_server`` on the tiny model."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from prmflow.samplers import OpenAISampler, SamplerConfig, SamplingRequest, VLLMSampler

REQUESTS = [SamplingRequest(f"r{i}", f"Ada has {i} apples.", n=2, max_tokens=8, seed=i) for i in range(3)]


def completion_body(body: dict[str, Any]) -> dict[str, Any]:
    """A minimal /v1/completions answer: n choices echoing the prompt length."""
    return {
        "choices": [
            {
                "index": i,
                "text": f"sample {i}",
                "finish_reason": "length",
                "logprobs": {"token_logprobs": [-0.5, -0.25]},
                "token_ids": [5, 6],
            }
            for i in reversed(range(body["n"]))  # out of order on purpose
        ],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": 2 * body["n"],
            "prompt_tokens_details": {"cached_tokens": 3},
        },
    }


def config(base_url: str, **overrides: Any) -> SamplerConfig:
    values: dict[str, Any] = {
        "backend": "openai",
        "model": "tiny",
        "base_url": base_url,
        "max_retries": 2,
        "backoff_s": 0.01,
    }
    values.update(overrides)
    return SamplerConfig(**values)


def test_unreachable_server_gives_error_results(unused_port: int) -> None:
    port = unused_port  # bound then released: nothing listens there
    with OpenAISampler(config(f"http://127.0.0.1:{port}/v1")) as sampler:
        results = sampler.generate(REQUESTS)
        assert [r.request_id for r in results] == ["r0", "r1", "r2"]
        for r in results:
            assert r.completions == ()
            assert r.error is not None and r.error.startswith("connect_error: ")
            assert "after 3 attempts" in r.error
        assert sampler.metrics()["failures"] == 3


def test_http_500_is_retried_then_reported(fake_server: Any) -> None:
    server = fake_server(lambda path, body, n: (500, {}, {"error": "engine died"}))
    with OpenAISampler(config(server.base_url)) as sampler:
        results = sampler.generate(REQUESTS)
    assert len(server.hits) == 3 * 3  # first try + 2 retries, per request
    for r in results:
        assert r.error is not None and r.error.startswith('http_500: {"error": "engine died"}')
        assert r.error.endswith("(after 3 attempts)")


def test_429_then_success(fake_server: Any) -> None:
    def respond(path: str, body: dict[str, Any], n: int) -> tuple[int, dict[str, str], Any]:
        if n == 1:
            return 429, {"Retry-After": "0"}, {"error": "slow down"}
        return 200, {}, completion_body(body)

    server = fake_server(respond)
    with OpenAISampler(config(server.base_url, max_concurrency=1)) as sampler:
        result = sampler.generate(REQUESTS[:1])[0]
        assert sampler.metrics() == {
            "requests": 1,
            "prompt_tokens": 7,
            "generated_tokens": 4,
            "cached_prompt_tokens": 3,
            "failures": 0,
        }
    assert result.error is None
    assert [c.index for c in result.completions] == [0, 1]
    assert result.completions[0].text == "sample 0"
    assert result.completions[0].token_ids == (5, 6)
    assert result.completions[0].cumulative_logprob == pytest.approx(-0.75)
    assert (result.prompt_tokens, result.cached_prompt_tokens) == (7, 3)
    assert len(server.hits) == 2


def test_request_body_and_api_key(fake_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRMFLOW_TEST_KEY", "sk-test")
    server = fake_server(lambda path, body, n: (200, {}, completion_body(body)))
    req = SamplingRequest("b", "Ben has", n=2, temperature=0.7, top_p=0.9, max_tokens=5, stop=("\n",), seed=3)
    cfg = config(
        server.base_url, api_key_env="PRMFLOW_TEST_KEY", engine_kwargs={"top_k": 20, "logprobs": None}
    )
    with OpenAISampler(cfg) as sampler:
        sampler.generate([req])
        seed = sampler._body(req)["seed"]
    path, body, headers = server.hits[0]
    assert path == "/v1/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "tiny",
        "prompt": "Ben has",
        "n": 2,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 5,
        "stop": ["\n"],
        "seed": seed,
        "top_k": 20,
    }


def test_client_errors_are_not_retried(fake_server: Any) -> None:
    server = fake_server(lambda path, body, n: (400, {}, {"error": "prompt too long"}))
    with OpenAISampler(config(server.base_url)) as sampler:
        result = sampler.generate(REQUESTS[:1])[0]
    assert result.error == 'http_400: {"error": "prompt too long"}'
    assert len(server.hits) == 1


def test_timeout_is_per_request(fake_server: Any) -> None:
    def respond(path: str, body: dict[str, Any], n: int) -> tuple[int, dict[str, str], Any]:
        time.sleep(0.6)
        return 200, {}, completion_body(body)

    server = fake_server(respond)
    with OpenAISampler(config(server.base_url, timeout_s=0.2, max_retries=0)) as sampler:
        result = sampler.generate(REQUESTS[:1])[0]
    assert result.error is not None and result.error.startswith("timeout: ")


def test_concurrency_is_bounded(fake_server: Any) -> None:
    in_flight, peak, lock = [0], [0], threading.Lock()
    overlapped = threading.Event()  # set once two requests are in flight together

    def respond(path: str, body: dict[str, Any], n: int) -> tuple[int, dict[str, str], Any]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] >= 2:
                overlapped.set()
        # Each request waits for a second one to arrive: a sampler that never overlaps requests
        # makes every request wait out this bound and the peak stays 1 (the assertion below).
        overlapped.wait(10)
        with lock:
            in_flight[0] -= 1
        return 200, {}, completion_body(body)

    server = fake_server(respond)
    many = [SamplingRequest(f"m{i}", "x", max_tokens=2) for i in range(12)]
    with OpenAISampler(config(server.base_url, max_concurrency=3)) as sampler:
        results = sampler.generate(many)
    assert all(r.error is None for r in results)
    assert [r.request_id for r in results] == [r.request_id for r in many]
    assert 1 < peak[0] <= 3


def test_works_inside_a_running_event_loop_and_other_threads(fake_server: Any) -> None:
    server = fake_server(lambda path, body, n: (200, {}, completion_body(body)))
    with OpenAISampler(config(server.base_url)) as sampler:

        async def inside_loop() -> list[Any]:
            return sampler.generate(REQUESTS)  # a sync call from async code must not need asyncio.run

        from_loop = asyncio.run(inside_loop())
        from_thread: list[Any] = []
        thread = threading.Thread(target=lambda: from_thread.extend(sampler.generate(REQUESTS)))
        thread.start()
        thread.join(timeout=30)
        assert from_loop == from_thread == sampler.generate(REQUESTS)
        assert all(r.error is None for r in from_loop)


def test_malformed_answer_fails_only_that_request(fake_server: Any) -> None:
    def respond(path: str, body: dict[str, Any], n: int) -> tuple[int, dict[str, str], Any]:
        if body["prompt"] == "bad":
            return 200, {}, {"unexpected": True}
        return 200, {}, completion_body(body)

    server = fake_server(respond)
    with OpenAISampler(config(server.base_url)) as sampler:
        good, bad = sampler.generate([SamplingRequest("g", "good"), SamplingRequest("b", "bad")])
    assert good.error is None
    assert bad.error is not None and bad.error.startswith("bad_response: KeyError")


def test_closed_sampler_refuses_work() -> None:
    sampler = OpenAISampler(config("http://127.0.0.1:9/v1"))
    sampler.close()
    with pytest.raises(RuntimeError, match="closed"):
        sampler.generate(REQUESTS)


# -- against a real vLLM OpenAI server ------------------------------------------------------------

PREFIX = (
    "Ada has 12 apples and buys 30 more. How many apples now? Step 1: 12 + 30 = 42. Step 2: 42 * 2 = 84. " * 2
)


@pytest.fixture(scope="module")
def server_sampler(vllm_server: str, tiny_model_dir: Any) -> Any:
    cfg = SamplerConfig(
        backend="openai",
        model=str(tiny_model_dir),
        base_url=vllm_server,
        engine_kwargs={"return_token_ids": True},
    )
    with OpenAISampler(cfg) as sampler:
        yield sampler


@pytest.mark.engine
def test_real_server_sampling(server_sampler: OpenAISampler) -> None:
    req = SamplingRequest("s", "Ben has 3 pencils.", n=3, max_tokens=12, seed=11)
    first, again = server_sampler.generate([req, req])
    assert first.error is None and len(first.completions) == 3
    assert [c.text for c in first.completions] == [c.text for c in again.completions]
    assert len({c.text for c in first.completions}) == 3
    for c in first.completions:
        assert c.finish_reason in ("stop", "length")
        assert 1 <= len(c.token_ids) <= 12
        assert c.cumulative_logprob is not None and c.cumulative_logprob < 0


@pytest.mark.engine
def test_real_server_prefix_cache_and_too_long_prompt(server_sampler: OpenAISampler) -> None:
    requests = [SamplingRequest(f"p{i}", PREFIX + f"Question {i}:", max_tokens=4, seed=i) for i in range(3)]
    requests.insert(1, SamplingRequest("long", "Gus has 7 books. " * 60, max_tokens=4))
    results = server_sampler.generate(requests)
    assert [r.request_id for r in results] == ["p0", "long", "p1", "p2"]
    long = results[1]
    assert long.completions == () and long.error is not None and long.error.startswith("http_400: ")
    assert "maximum context length" in long.error
    ok = [r for r in results if r.request_id != "long"]
    assert all(r.error is None and r.completions for r in ok)
    # The two later requests (or the warm cache on a rerun) reuse the shared 64-token prefix.
    assert sum(r.cached_prompt_tokens for r in server_sampler.generate(requests[:1] + requests[2:])) >= 3 * 64


@pytest.mark.engine
def test_real_server_chat_endpoint(vllm_server: str, tiny_model_dir: Any) -> None:
    cfg = SamplerConfig(backend="openai", model=str(tiny_model_dir), base_url=vllm_server, chat_template=True)
    with OpenAISampler(cfg) as sampler:
        result = sampler.generate([SamplingRequest("c", "Ben has 3 pencils.", max_tokens=6, seed=1)])[0]
    assert result.error is None, result.error
    assert result.prompt_tokens > len("Ben has 3 pencils.".split())  # the template's tokens are counted
    assert result.completions[0].cumulative_logprob is not None


@pytest.mark.engine
def test_server_and_in_process_engine_agree(server_sampler: OpenAISampler, vllm_sampler: VLLMSampler) -> None:
    """Same derived seeds, same float32 model, same vLLM sampler: the same text, whichever door."""
    requests = [
        SamplingRequest(f"x{i}", f"Cleo has {i} shells.", n=2, max_tokens=10, seed=100 + i) for i in range(2)
    ]
    via_server = server_sampler.generate(requests)
    in_process = vllm_sampler.generate(requests)
    assert [[c.text for c in r.completions] for r in via_server] == [
        [c.text for c in r.completions] for r in in_process
    ]
