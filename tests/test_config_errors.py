"""The config-error corpus: each broken config makes `prmflow run` exit 2 with one line naming the
key and the offending value, before any pipeline stage runs (no output written, no traceback).

One row per mistake a user made (or could make) in a real config."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prmflow.cli import main

REPO = Path(__file__).resolve().parents[1]
GSM8K = str(REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl")
BASE = {
    "name": "c",
    "inputs": [{"name": "g", "format": "gsm8k", "path": GSM8K, "limit": 3}],
    "outcome": {"labeler": "exact"},
}
POLICY = {"sampler": {"backend": "fake", "model": "fake"}, "sampling": {"n": 1}}


def patched(patch: dict, base: dict = BASE) -> dict:
    config = copy.deepcopy(base)
    for dotted, value in patch.items():
        *path, last = dotted.split(".")
        target = config
        for key in path:
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return config


CASES = [
    # (patch, regex the one line must match: the key and the value)
    ({"output.num_shards": "two"}, r"output\.num_shards must be an integer, got 'two'"),
    ({"output.num_shards": 2.5}, r"output\.num_shards must be an integer, got 2\.5"),
    ({"output.num_shards": 0}, r"output\.num_shards must be .*, got 0"),
    ({"output.overwrite": "false"}, r"output\.overwrite must be true or false, got 'false'"),
    ({"inputs.0.limit": 2.5}, r"inputs\[0\]\.limit must be an integer, got 2\.5"),
    ({"inputs.0.limit": -1}, r"inputs\[0\]\.limit must be >= 1 or null, got -1"),
    ({"inputs.0.domain": "nonsense"}, r"inputs\[0\]\.domain must be one of .*, got 'nonsense'"),
    ({"inputs.0.domain": "arith"}, r"inputs\[0\]\.domain must be 'arith' only with format 'arith'.*got 'arith'"),
    ({"inputs.0.format": "csv"}, r"inputs\[0\]\.format must be one of .*, got 'csv'"),
    ({"inputs.0.import_solutions": "yes"}, r"inputs\[0\]\.import_solutions must be true or false, got 'yes'"),
    ({"output.keep_cache": "samples"}, r"output\.keep_cache must be true or false, got 'samples'"),
    ({"sampler.enforce_eager": "yes"}, r"sampler\.enforce_eager must be .*, got 'yes'"),
    ({"inputs.0.format": "jsonl", "inputs.0.fields": {"solution": "s"}}, r"inputs\[0\]\.fields must be a mapping with "
     r"at least 'prompt' for format 'jsonl' \(or left out: common shapes are recognised\)"),
    ({"inputs.0.format": "jsonl", "inputs.0.fields": {"prompt": 5}}, r"inputs\[0\]\.fields\.prompt must be a string, got 5"),
    ({"inputs.0.format": "jsonl", "inputs.0.fields": {"prompt": "q", "answer": "a"}}, r"inputs\[0\]\.fields has unknown keys \['answer'\]"),
    ({"inputs.0.path": ""}, r"inputs\[0\]\.path must be a non-empty path"),
    ({"inputs.0.colour": "red"}, r"inputs\[0\] has unknown keys \['colour'\]"),
    ({"inputs": []}, r"inputs must be a non-empty list, got \[\]"),
    ({"inputs": "data.jsonl"}, r"inputs must be a non-empty list, got 'data.jsonl'"),
    ({"seed": "zero"}, r"seed must be an integer .*, got 'zero'"),
    ({"seed": -3}, r"seed must be an integer .*, got -3"),
    ({"outcome.labeler": "bogus"}, r"outcome\.labeler must be one of .*, got 'bogus'"),
    ({"outcome.options": {"timeout_s": "5"}, "outcome.labeler": "math"}, r"outcome\.options\.timeout_s .*'5'"),
    ({"outcome.options": {"timeout": 3}, "outcome.labeler": "math"}, r"outcome\.options has unknown keys \['timeout'\]"),
    ({"outcome.options": {"rel_tol": -1}, "outcome.labeler": "numeric"}, r"outcome\.(options\.)?rel_tol.*-1"),
    ({"outcome.options": {"x": 1}}, r"outcome\.options: labeler 'exact' takes no options"),
    ({"segment.strategy": "words"}, r"segment\.strategy must be one of .*, got 'words'"),
    ({"segment.strategy": "regex", "segment.pattern": "("}, r"segment\.pattern must be a valid regex, got '\('"),
    ({"limits.max_steps": 0}, r"limits\.max_steps must be >= 1, got 0"),
    ({"limits.max_record_bytes": "1MB"}, r"limits\.max_record_bytes must be an integer, got '1MB'"),
    ({"sampling": {"n": 2}}, r"sampler must be set when sampling or process is"),
    ({"sampler.model": "/no/such/model", "sampler.backend": "hf"}, r"sampler\.model must be a local model directory.*'/no/such/model'"),
    ({"sampler.model": "builtin:nonexistent", "sampler.backend": "vllm"}, r"sampler\.model must be .*builtin:nonexistent"),
    ({"sampler.model": "HuggingFaceTB/SmolLM2-135M-Instruct", "sampler.backend": "vllm"},
     r"sampler\.model must be a local model directory .*nothing is downloaded.*'HuggingFaceTB/SmolLM2-135M-Instruct'"),
    ({"sampler.backend": "vllm", "sampler.model": "builtin:arith-tiny", "sampler.max_model_len": 1024},
     r"sampler\.max_model_len must be <= the model's max_position_embeddings \(256\), got 1024"),
    ({"sampler.backend": "tgi"}, r"sampler\.backend must be one of .*, got 'tgi'"),
    ({"sampler.kv_cache_memory_byte": 1}, r"sampler has unknown keys \['kv_cache_memory_byte'\]"),
    ({"sampling.temperature": -1}, r"sampling\.temperature must be >= 0, got -1"),
    ({"sampling.n": "4"}, r"sampling\.n must be an integer, got '4'"),
    ({"sampling.template": "no placeholder"}, r"sampling\.template must be one of .* or contain \{prompt\}"),
    ({"process": {"method": "mc", "after_error": "bogus"}}, r"process\.after_error must be one of .*, got 'bogus'"),
    ({"process": {"method": "binary-search", "correct_outcome": "rollout"}}, r"process\.correct_outcome must be one of .*, got 'rollout'"),
    ({"process": {"method": "reverse-curriculum", "curriculum_mode": "chars"}}, r"process\.curriculum_mode must be one of .*'chars'"),
    ({"process": {"method": "mc", "top_p": 0}}, r"process\.top_p must be in \(0, 1\], got 0"),
    ({"process": {"method": "mc", "max_tokens": 0}}, r"process\.max_tokens must be >= 1, got 0"),
    ({"process": {"method": "mc", "rollouts": 0}}, r"process\.rollouts must be >= 1, got 0"),
    ({"process": {"method": "omega"}}, r"process\.method must be one of .*, got 'omega'"),
    ({"process": {"method": "mc", "relative": {"mode": "log"}}}, r"process\.relative\.mode must be one of .*'log'"),
    ({"process": {"method": "mc", "adaptive": {"confidence": 0.9}}}, r"process\.adaptive must be null unless process\.method is 'binary-search', got 'mc'"),
    ({"process": {"method": "binary-search", "adaptive": {"confidence": 1}}}, r"process\.adaptive\.confidence must be in \(0, 1\), got 1"),
    ({"process": {"method": "binary-search", "adaptive": {"min_rollouts": 0}}}, r"process\.adaptive\.min_rollouts must be >= 1, got 0"),
    ({"process": {"method": "binary-search", "adaptive": {"min_rollouts": 4, "max_rollouts": 2}}}, r"process\.adaptive\.max_rollouts must be null or >= process\.adaptive\.min_rollouts, got 2"),
    ({"process": {"method": "binary-search", "adaptive": {"probe_order": "yes"}}}, r"process\.adaptive\.probe_order must be"),
    ({"process": {"method": "reverse-curriculum", "sequential": True}}, r"process\.sequential must be false unless process\.method is 'mc' or 'binary-search', got 'reverse-curriculum'"),
    ({"process": {"method": "mc", "sequential": "yes"}}, r"process\.sequential must be"),
    ({"process": {"method": "mc", "active": {"score": "vibes"}}}, r"process\.active\.score must be one of .*, got 'vibes'"),
    ({"process": {"method": "mc", "active": {"confidence": 0.5}}}, r"process\.active\.confidence must be in \(0\.5, 1\], got 0\.5"),
    ({"process": {"method": "reverse-curriculum", "active": {"score": "judge"}}}, r"process\.active must be null unless"),
    ({"consistency": {"score": "vibes"}}, r"consistency\.score must be one of .*, got 'vibes'"),
    ({"consistency": {"mode": "hard", "threshold": float("nan")}}, r"consistency\.threshold must be a finite number, got nan"),
    ({"consistency": {"mode": "strict"}}, r"consistency\.mode must be one of .*'strict'"),
    ({"extra_section": {}}, r"has unknown keys \['extra_section'\]"),
]


@pytest.mark.parametrize("patch, message", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_config_exits_2_with_one_line_naming_key_and_value(patch, message, tmp_path, capsys):
    base = {**BASE, **POLICY} if any(k.startswith(("sampler.", "sampling.")) for k in patch) else BASE
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(patched(patch, base)))
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("prmflow run: ")
    assert __import__("re").search(message, err), err
    assert not out.exists()  # refused before any stage ran


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 30


def test_bad_yaml_and_missing_file_exit_2_through_the_real_command(tmp_path):
    (tmp_path / "bad.yaml").write_text("inputs: [\n")
    for config in (tmp_path / "bad.yaml", tmp_path / "missing.yaml"):
        proc = subprocess.run([sys.executable, "-m", "prmflow", "run", str(config), "--output", str(tmp_path / "o")],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 2
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and str(config) in lines[0] and "Traceback" not in proc.stderr, proc.stderr
