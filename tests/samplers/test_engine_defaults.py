"""Engine defaults that work where the engine runs: with no engine keys, vLLM on a CPU gets a KV cache
sized from free memory, eager mode, 32-token blocks and float32; on a GPU vLLM keeps its own defaults.
Any engine start failure is one line naming the key to set, also when Beam re-raises it wrapped."""

from __future__ import annotations

import pytest

from prmflow.samplers.base import EngineStartError, SamplerConfig, engine_start_error, engine_start_failure
from prmflow.samplers.vllm_backend import (
    CPU_BLOCK_SIZE,
    CPU_KV_MAX,
    CPU_KV_MIN,
    available_memory,
    cpu_kv_cache_bytes,
    engine_kwargs,
)


@pytest.fixture
def bare(tiny_model_dir):
    return SamplerConfig(backend="vllm", model=str(tiny_model_dir))


def test_cpu_defaults_fill_every_unset_engine_key(bare):
    kwargs = engine_kwargs(bare, on_cpu=True, available=16 << 30)
    assert kwargs["kv_cache_memory_bytes"] == 2 << 30  # 1/8 of 16 GiB
    assert (kwargs["enforce_eager"], kwargs["block_size"], kwargs["dtype"]) == (True, CPU_BLOCK_SIZE, "float32")
    assert kwargs["enable_chunked_prefill"] is False


def test_gpu_keeps_vllms_own_defaults(bare):
    kwargs = engine_kwargs(bare, on_cpu=False, available=16 << 30)
    for key in ("kv_cache_memory_bytes", "enforce_eager", "block_size", "gpu_memory_utilization", "max_model_len"):
        assert key not in kwargs, key
    assert kwargs["dtype"] == "auto" and "enable_chunked_prefill" not in kwargs


def test_what_the_config_sets_wins(tiny_model_dir):
    config = SamplerConfig(backend="vllm", model=str(tiny_model_dir), dtype="bfloat16", enforce_eager=False,
                           kv_cache_memory_bytes=123 << 20, block_size=16,
                           engine_kwargs={"enable_chunked_prefill": True})
    kwargs = engine_kwargs(config, on_cpu=True, available=16 << 30)
    assert (kwargs["dtype"], kwargs["enforce_eager"], kwargs["kv_cache_memory_bytes"], kwargs["block_size"]) == (
        "bfloat16", False, 123 << 20, 16)
    assert kwargs["enable_chunked_prefill"] is True
    passed = SamplerConfig(backend="vllm", model=str(tiny_model_dir), engine_kwargs={"kv_cache_memory_bytes": 1 << 28})
    assert engine_kwargs(passed, on_cpu=True, available=16 << 30)["kv_cache_memory_bytes"] == 1 << 28


@pytest.mark.parametrize("available, expected", [
    (None, CPU_KV_MIN), (1 << 30, CPU_KV_MIN), (8 << 30, 1 << 30), (512 << 30, CPU_KV_MAX)])
def test_cpu_kv_cache_is_a_clamped_share_of_free_memory(available, expected):
    assert cpu_kv_cache_bytes(available) == expected


def test_available_memory_is_read_on_linux():
    found = available_memory()
    assert found is not None and found > 0


@pytest.mark.parametrize("error, key", [
    (ValueError("To serve at least one request with the model's max seq len (8192), (0.38 GiB KV cache is needed, "
                "which is larger than the available KV cache memory (0.1 GiB)"), "sampler.max_model_len"),
    (ValueError("Insufficient memory: 3.2 GiB less than requested memory for kv cache; Reduce CPU memory used by "
                "other processes"), "sampler.kv_cache_memory_bytes"),
    (RuntimeError("Bfloat16 is only supported on GPUs with compute capability of at least 8.0"), "sampler.dtype"),
    (RuntimeError("torch._dynamo hit a compile error"), "sampler.enforce_eager: true"),
    (OSError("something unheard of"), "sampler.engine_kwargs"),
])
def test_a_start_failure_is_one_line_naming_the_key(error, key):
    failure = engine_start_failure("vLLM", "my-model", error)
    line = str(failure)
    assert "\n" not in line and f"set {key}" in line and "my-model" in line and type(error).__name__ in line


def test_the_line_is_found_inside_what_beam_reraises():
    failure = engine_start_failure("vLLM", "m", ValueError("not enough KV cache"))
    chained = RuntimeError("bundle failed")
    chained.__cause__ = failure
    assert engine_start_error(chained) == str(failure)
    wrapped = RuntimeError(f"Traceback ...\nEngineStartError: {failure} [while running 'SampleTrajectories']\nmore")
    assert engine_start_error(wrapped) == str(failure)
    assert engine_start_error(RuntimeError("some other failure")) is None
    assert isinstance(pytest.importorskip("pickle").loads(pytest.importorskip("pickle").dumps(failure)),
                      EngineStartError)


@pytest.mark.engine
def test_a_config_with_no_engine_keys_starts_on_this_cpu(tiny_model_dir):
    """The real engine, the tiny model, nothing but backend and model set."""
    pytest.importorskip("vllm")
    from prmflow.samplers.base import SamplingRequest
    from prmflow.samplers.shared import shared_sampler

    sampler = shared_sampler(SamplerConfig(backend="vllm", model=str(tiny_model_dir)))
    llm = sampler.sampler.llm
    config = llm.llm_engine.vllm_config
    assert config.model_config.enforce_eager and config.cache_config.block_size == CPU_BLOCK_SIZE
    assert str(config.model_config.dtype) == "torch.float32"
    [result] = sampler.generate([SamplingRequest("r", "Ada has 3 apples.", n=2, max_tokens=8)])
    assert result.ok and len(result.completions) == 2


@pytest.mark.engine
def test_an_engine_that_cannot_start_is_one_line_from_the_cli(tiny_model_dir, tmp_path, capsys):
    """A KV cache too small for one sequence: exit 1 and one line naming the key, no traceback."""
    pytest.importorskip("vllm")
    import json

    import yaml

    from prmflow.cli import main

    (tmp_path / "p.jsonl").write_text(json.dumps({"question": "Ada has 3 apples.", "answer": 3}) + "\n")
    config = {"name": "tight", "inputs": [{"format": "jsonl", "path": str(tmp_path / "p.jsonl")}],
              "sampler": {"backend": "vllm", "model": str(tiny_model_dir), "kv_cache_memory_bytes": 4096},
              "sampling": {"n": 1, "max_tokens": 8}, "outcome": {"labeler": "exact"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prmflow run: the vLLM engine did not start"), err
    assert "set sampler." in err[0] and "Traceback" not in err[0]
    assert err[0].endswith("(-v shows the engine's log)")  # without Beam's "[while running ...]"
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_engine_calls_log_n_of_n_completions_with_an_eta(caplog):
    """The tqdm class handed to vLLM's generate logs instead of drawing; the ETA is the rate since
    the first finished request, so the prefill before it does not inflate it."""
    import logging
    import time

    from prmflow.samplers.vllm_backend import progress_bar

    bar_class = progress_bar(16, every_s=0.0)
    caplog.set_level(logging.INFO, logger="prmflow")
    silent = bar_class(total=4, desc="Adding requests")  # vLLM's bar while it adds requests
    silent.update(4)
    bar = bar_class(total=4, desc="Processed prompts")  # vLLM counts requests; we count completions
    bar.format_dict  # noqa: B018 - vLLM reads it for its speed figures
    for _ in range(4):
        time.sleep(0.01)
        bar.update(4)  # a request with n = 4 finished
    bar.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("vLLM:")]
    assert lines[0].startswith("vLLM: 4/16 completions") and "ETA" not in lines[0]
    assert lines[1].startswith("vLLM: 8/16 completions") and ", ETA " in lines[1]
    assert lines[-1].startswith("vLLM: 16/16 completions") and "ETA" not in lines[-1]
    assert len(lines) == len(set(lines)) == 4  # each count once, the closing refresh included
