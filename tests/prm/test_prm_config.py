"""Config errors: one line naming the key and the value, at load; the CLI exits 2 with that line."""

from __future__ import annotations

import json

import pytest

from prmflow.cli import main
from prmflow.core.section import ConfigError, from_mapping
from prmflow.prm.config import PRMScoreConfig, parse_train_config

BASE = {"data": "d", "output": "o"}


@pytest.mark.parametrize(("change", "message"), [
    ({"epochs": 0}, "train_prm.epochs must be >= 1, got 0"),
    ({"lr": "fast"}, "train_prm.lr must be a number, got 'fast'"),
    ({"lr": 2.0}, "train_prm.lr must be in (0, 1), got 2.0"),
    ({"batch_size": 2.5}, "train_prm.batch_size must be an integer, got 2.5"),
    ({"val_fraction": 1.0}, "train_prm.val_fraction must be in [0, 1), got 1.0"),
    ({"device": "tpu"}, "train_prm.device must be one of 'auto', 'cpu', 'cuda', got 'tpu'"),
    ({"dtype": "float16"}, "train_prm.dtype must be one of 'auto', 'float32', 'bfloat16', got 'float16'"),
    ({"use_weights": "yes"}, "train_prm.use_weights must be true or false, got 'yes'"),
    ({"separator": " "}, "train_prm.separator must be a non-empty string that is not only spaces, got ' '"),
    ({"prompt_template": "Q:"}, "train_prm.prompt_template must contain {prompt}, got 'Q:'"),
    ({"data": []}, "train_prm.data must be a path or a non-empty list of paths, got ()"),
    ({"output": None}, "train_prm.output must be a string, got None"),
    ({"epoch": 3}, "train_prm has unknown keys ['epoch']"),
    ({"head": "mlp"}, "train_prm.head must be one of 'logprob', 'reward-token', 'value', got 'mlp'"),
    ({"head_lr": 0}, "train_prm.head_lr must be in (0, 1), got 0"),
    ({"reference_threshold": 1.0}, "train_prm.reference_threshold must be in [0, 1), got 1.0"),
    ({"reward_tokens": ["+"]}, "train_prm.reward_tokens must be two different non-empty strings"),
    ({"reward_tokens": ["+", "+"]}, "train_prm.reward_tokens must be two different non-empty strings"),
    ({"micro_batch_size": 5}, "train_prm.micro_batch_size must be a divisor of batch_size (16) or null, got 5"),
    ({"micro_batch_size": 0}, "train_prm.micro_batch_size must be a divisor of batch_size (16) or null, got 0"),
    ({"eval_steps": -1}, "train_prm.eval_steps must be >= 0, got -1"),
    ({"save_total_limit": 0}, "train_prm.save_total_limit must be >= 1, got 0"),
    ({"lora_r": -1}, "train_prm.lora_r must be >= 0, got -1"),
    ({"lora_alpha": 0}, "train_prm.lora_alpha must be >= 1, got 0"),
    ({"checkpoint_dir": " "}, "train_prm.checkpoint_dir must be a non-empty path or null, got ' '"),
    ({"resume": "yes"}, "train_prm.resume must be true or false, got 'yes'"),
    ({"keep_checkpoints": 1}, "train_prm.keep_checkpoints must be true or false, got 1"),
])
def test_train_config_errors(change, message):
    with pytest.raises(ConfigError) as e:
        parse_train_config({**BASE, **change})
    assert str(e.value).startswith(message)


def test_a_missing_output_is_required():
    with pytest.raises(ConfigError, match=r"^train_prm.output is required$"):
        parse_train_config({"data": "d"})


def test_prm_section_refuses_a_directory_that_is_not_a_saved_prm(tmp_path):
    with pytest.raises(ConfigError, match=r"^prm.model must be a PRM saved by `prmflow train-prm`"):
        from_mapping(PRMScoreConfig, {"model": str(tmp_path)}, "prm")
    (tmp_path / "model").mkdir()
    (tmp_path / "prm.json").write_text(json.dumps({"format": "prmflow-prm", "format_version": 99}))
    with pytest.raises(ConfigError, match="format_version must be 1, got 99"):
        from_mapping(PRMScoreConfig, {"model": str(tmp_path)}, "prm")
    with pytest.raises(ConfigError, match=r"^prm.batch_size must be >= 1, got 0"):
        from_mapping(PRMScoreConfig, {"model": str(tmp_path), "batch_size": 0}, "prm")


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("epochs: two\ndata: d\noutput: o\n", "prmflow train-prm: train_prm.epochs must be an integer, got 'two'"),
    (None, "prmflow train-prm: config file"),
])
def test_cli_exits_2_with_one_line(tmp_path, capsys, yaml_text, expected):
    path = tmp_path / "c.yaml"
    if yaml_text is not None:
        path.write_text(yaml_text)
    assert main(["train-prm", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


def test_cli_refuses_data_that_does_not_exist(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {tmp_path / 'none.jsonl'}\noutput: {tmp_path / 'out'}\n")
    assert main(["train-prm", str(path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_refuses_rows_whose_labels_do_not_line_up(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "q", "steps": ["a", "b"], "labels": [1.0]}) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {data}\noutput: {tmp_path / 'out'}\n")
    assert main(["train-prm", str(path)]) == 2
    assert "labels must be a list of 2 numbers (one per step)" in capsys.readouterr().err


def test_the_self_training_examples_load(monkeypatch):
    from pathlib import Path

    from prmflow.config import load_config
    from prmflow.prm.config import load_train_config

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)
    round1 = load_config("examples/arith-self-train-round1.yaml")
    assert round1.consistency.score == "mc_value" and round1.prm is None
    train = load_train_config("examples/arith-prm-round1.yaml")
    assert train.data == "out/arith-round1-prm" and train.use_weights
    if not (repo / "out" / "arith-prm1" / "prm.json").is_file():  # round 2 needs round 1's PRM, checked at load
        with pytest.raises(ConfigError, match=r"prm.model must be a PRM saved by `prmflow train-prm`"):
            load_config("examples/arith-self-train-round2.yaml")


def test_lora_without_peft_is_one_line_naming_the_pip_command(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import sys

    from prmflow.prm.train import train

    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError, installed or not
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "q", "steps": ["a"], "labels": [1.0]}) + "\n")
    config = parse_train_config({"data": str(tmp_path / "t.jsonl"), "output": str(tmp_path / "o"), "lora_r": 8,
                                 "device": "cpu"})
    with pytest.raises(ConfigError, match=r"^train_prm.lora_r is 8 but peft is not installed; pip install peft"):
        train(config, progress=False)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.checkpoints").exists()  # refused before any work


def test_reward_tokens_that_are_not_one_token_are_refused(tmp_path):
    pytest.importorskip("torch")
    from prmflow.prm.train import train

    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "q", "steps": ["a"], "labels": [1.0]}) + "\n")
    config = parse_train_config({"data": str(tmp_path / "t.jsonl"), "output": str(tmp_path / "o"),
                                 "head": "reward-token", "reward_tokens": ["good step", "-"], "device": "cpu"})
    with pytest.raises(ConfigError, match=r"^train_prm.reward_tokens must each be one token of the tokenizer, "
                                          r"got 'good step'"):
        train(config, progress=False)
