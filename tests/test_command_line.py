"""The ``prmflow`` command line as a user meets it: every subcommand's --help exits 0 and describes
every option, --version, shell completion, the config reference (docs/config.md up to date)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from prmflow import __version__
from prmflow.cli import COMMANDS, build_parser, completion_script, main

REPO = Path(__file__).resolve().parents[1]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    return next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_command_is_in_the_parser():
    assert list(_subparsers()) == list(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_exits_0_and_describes_every_option(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: prmflow {command}")
    parser = _subparsers()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"prmflow {command}: {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in out, f"prmflow {command} --help does not list {option}"


def test_top_level_help_and_version(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"prmflow {__version__}"


def test_version_from_the_installed_command():
    done = subprocess.run([sys.executable, "-m", "prmflow", "--version"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == f"prmflow {__version__}"
    assert "apitools" not in done.stderr  # nothing imports Beam for --help or --version


@pytest.mark.parametrize("argv, message", [
    (["bogus"], "unknown command 'bogus'"),
    (["export"], "the following arguments are required"),
    (["sql", "dir"], "the following arguments are required: QUERY"),
    (["schema", "nope"], "invalid choice: 'nope'"),
    (["inspect"], "the following arguments are required: DIR"),
    (["config"], "the following arguments are required: --defaults"),
    (["completion", "fish"], "invalid choice: 'fish'"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_bash_completion_completes_commands_and_options(tmp_path):
    script = tmp_path / "prmflow.bash"
    script.write_text(completion_script("bash"), encoding="utf-8")

    def complete(*words: str) -> list[str]:
        line = " ".join(f'"{w}"' for w in words)
        probe = (f'source {script}; COMP_WORDS=(prmflow {line}); COMP_CWORD={len(words)}; _prmflow; '
                 'printf "%s\\n" "${COMPREPLY[@]}"')
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert "inspect" in complete("in") and "run" not in complete("in")
    assert complete("run", "--ou") == ["--output"]
    assert "--val-fraction" in complete("export", "run_dir", "--val")
    assert "--defaults" in complete("config", "--")


def test_zsh_completion_loads_bashcompinit():
    assert completion_script("zsh").startswith("# prmflow zsh completion")
    assert "bashcompinit" in completion_script("zsh")


def test_config_reference_is_docs_config_md(capsys):
    assert main(["config", "--defaults"]) == 0
    out = capsys.readouterr().out
    docs = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert out == docs, "docs/config.md is out of date: prmflow config --defaults > docs/config.md"


def test_config_reference_lists_every_key_with_its_meaning():
    from prmflow.config import InputConfig, LimitsConfig, OutputConfig
    from prmflow.config_docs import field_docs, reference
    from prmflow.core.prompts import SamplingConfig
    from prmflow.core.rollouts import ProcessConfig
    from prmflow.core.segment import SegmentConfig
    from prmflow.samplers.base import SamplerConfig

    text = reference()
    for cls in (InputConfig, LimitsConfig, OutputConfig, SamplingConfig, ProcessConfig, SegmentConfig, SamplerConfig):
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in text, (cls.__name__, f.name)
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring, so no meaning in the reference"
    # the defaults a newcomer asked about are stated as they are
    assert "| `rollouts` | `4` |" in text and "| `template` | `\"plain\"` |" in text
