import pytest

from prmflow.config import ConfigError, load_config, parse_config

BASE = {"name": "t", "inputs": [{"format": "gsm8k", "path": "x.jsonl"}]}


def test_defaults():
    cfg = parse_config(BASE)
    assert cfg.inputs[0].source_name == "gsm8k" and cfg.inputs[0].domain_name == "math"
    assert cfg.segment.strategy == "lines" and cfg.outcome.labeler == "math"
    assert cfg.output.num_shards == 1


def test_digest_is_stable_and_sensitive():
    assert parse_config(BASE).digest() == parse_config(dict(BASE)).digest()
    assert parse_config({**BASE, "seed": 1}).digest() != parse_config(BASE).digest()


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"inputz": []}, r"unknown keys \['inputz'\]"),
        ({"inputs": []}, "inputs must be a non-empty list"),
        ({"inputs": [{"format": "csv", "path": "x"}]}, "format must be one of"),
        # without fields a JSONL row in a common shape is recognised; a mapping must name the prompt
        ({"inputs": [{"format": "jsonl", "path": "x", "fields": {"solution": "s"}}]},
         "inputs\\[0\\].fields must be a mapping with at least 'prompt'"),
        ({"inputs": [{"format": "jsonl", "path": "x", "fields": {"prompt": "q", "answer": "a"}}]}, r"unknown keys \['answer'\]"),
        ({"inputs": [{"format": "gsm8k", "path": "x", "limit": 0}]}, r"inputs\[0\].limit must be >= 1 or null, got 0"),
        ({"inputs": [{"format": "gsm8k", "path": "x"}, {"format": "gsm8k", "path": "y"}]}, "name must be unique"),
        ({"inputs": [{"format": "processbench", "path": "x", "references": {"format": "gsm8k"}}]}, "references"),
        ({"segment": {"strategy": "words"}}, "segment.strategy must be one of"),
        ({"output": {"num_shards": 0}}, r"output.num_shards must be an integer in \[1, 100000\], got 0"),
        ({"limits": {"max_steps": 0}}, "max_steps must be >= 1"),
        ({"seed": "zero"}, "seed must be an integer"),
    ],
)
def test_errors_name_the_key_and_value(patch, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, **patch})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_examples_are_valid():
    from pathlib import Path

    import yaml

    from prmflow.prm.config import load_train_config

    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
    assert len(examples) >= 6, examples  # a glob that finds nothing would pass vacuously
    # round 2 of self-training reads the PRM that round 1 trains: loading it alone must fail on that
    needs_earlier_output = {"arith-self-train-round2.yaml": "out/arith-prm1"}
    for path in examples:  # run configs, and `prmflow train-prm` configs (no inputs)
        if path.name in needs_earlier_output:
            with pytest.raises(ConfigError, match=needs_earlier_output[path.name]):
                load_config(path)
        elif "inputs" in yaml.safe_load(path.read_text()):
            load_config(path)
        else:
            load_train_config(path)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"sampler": {"backend": "vllm", "model": "builtin:arith-tiny", "dtpe": "float32"}}, "dtpe"),
        ({"sampler": {"backend": "tgi", "model": "builtin:arith-tiny"}}, "backend"),
        ({"sampler": {"backend": "vllm", "model": "builtin:arith-tiny"}, "sampling": {"n": -1}}, "sampling.n must be >= 0"),
        ({"sampler": {"backend": "vllm", "model": "builtin:arith-tiny"}, "process": {"method": "mc", "rollouts": 0}}, "process.rollouts"),
        ({"process": {"method": "mc"}}, "sampler must be set when sampling or process is"),
    ],
)
def test_stage_sections_are_validated_at_load(patch, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, **patch})
