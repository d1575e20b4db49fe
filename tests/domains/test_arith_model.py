"""The shipped ``builtin:arith-tiny`` policy loads and follows its format, in transformers and vLLM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prmflow.domains.arith import check_solution, format_prompt, generate_problems
from tests.fixtures.engines import transformers_greedy

EVAL_SEED = 7  # scripts/eval_arith.py's seed; training used seeds >= 1000


def model_dir() -> Path:
    try:
        from prmflow.models import resolve_model_path
    except ImportError:  # resolver not present in this checkout: same mapping, by hand
        return Path(__file__).resolve().parents[2] / "prmflow" / "models" / "arith-tiny"
    return Path(resolve_model_path("builtin:arith-tiny"))


def test_model_directory_is_complete_and_small():
    path = model_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (path / name).is_file(), f"{name} missing from {path}"
    total = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    assert total < 8 << 20, f"model directory is {total} bytes; it ships inside the wheel"
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["max_position_embeddings"] == 256


def test_tokenizer_splits_digits_and_prepends_bos():
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir())
    ids = tok("Question: Ava has 125 apples.").input_ids
    assert ids[0] == tok.bos_token_id
    tokens = tok.convert_ids_to_tokens(ids)
    assert ["1", "2", "5"] == [t for t in tokens if t.isdigit()]
    text = "12 + 30 = 42\nThe answer is 42"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_transformers_generates_solutions():
    problems = generate_problems(8, seed=EVAL_SEED)
    tok, generated, texts = transformers_greedy(model_dir(), [format_prompt(p) for p in problems], max_new_tokens=100)
    results = [check_solution(p, t) for p, t in zip(problems, texts, strict=True)]
    assert sum(r.well_formed for r in results) >= 7, texts
    assert sum(r.answer_correct for r in results) >= 4, texts  # greedy accuracy ~90% (model card)
    # It stops by itself: every completion ended with </s> before max_new_tokens.
    assert all((row == tok.eos_token_id).any() for row in generated)


@pytest.mark.engine
def test_vllm_samples_follow_the_format():
    # The in-process CPU engine settings of the Makefile; set before vLLM reads them.
    for key, value in {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }.items():
        os.environ.setdefault(key, value)
    vllm = pytest.importorskip("vllm")
    llm = vllm.LLM(
        model=str(model_dir()),
        enforce_eager=True,
        kv_cache_memory_bytes=256 << 20,
        block_size=32,
        seed=0,
        dtype="float32",
    )
    problems = generate_problems(50, seed=EVAL_SEED)
    # Engine-level seed only: per-request seeds crash vLLM 0.32 on CPU (see scripts/eval_arith.py).
    params = vllm.SamplingParams(temperature=1.0, max_tokens=128)
    outputs = llm.generate([format_prompt(p) for p in problems], params, use_tqdm=False)
    results = [check_solution(p, o.outputs[0].text) for p, o in zip(problems, outputs, strict=True)]
    well_formed = sum(r.well_formed for r in results) / len(results)
    assert well_formed >= 0.9, [o.outputs[0].text for o in outputs]
    assert sum(r.answer_correct for r in results) >= 15  # T=1 accuracy is ~70% (model card); 30% is a floor
