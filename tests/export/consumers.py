"""The trainers' own code, from the pinned wheels `make consumers` (scripts/install_consumers.sh) puts in
.cache/consumers, each loaded alone: the directory goes at the end of sys.path (the venv's packages win)
and a module whose package __init__ drags in a GPU stack (openrlhf.models -> deepspeed) is loaded from
its file. A consumer that is not installed skips its tests with the command that installs it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CONSUMERS = Path(os.environ.get("PRMFLOW_CONSUMERS", REPO / ".cache" / "consumers"))


def _on_path(name: str) -> Path:
    where = CONSUMERS / name
    if not (where / ".installed").exists():
        pytest.skip(f"{name} is not installed in {where}; run `make consumers`")
    if str(where) not in sys.path:
        sys.path.append(str(where))
    return where


def _from_file(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def openrlhf() -> tuple[type, type]:
    """OpenRLHF 0.9.5's ProcessRewardDataset and PRMLoss."""
    where = _on_path("openrlhf")
    dataset = importlib.import_module("openrlhf.datasets.process_reward_dataset")
    _from_file("openrlhf.models.utils", where / "openrlhf" / "models" / "utils.py")
    loss = _from_file("openrlhf.models.loss", where / "openrlhf" / "models" / "loss.py")
    import openrlhf as package

    assert Path(package.__file__).is_relative_to(where), package.__file__
    return dataset.ProcessRewardDataset, loss.PRMLoss


def verl_dir() -> Path:
    """verl 0.9.1's directory, with the deps `import verl` needs installed beside it; for a subprocess's
    PYTHONPATH (its omegaconf pins antlr4 4.9.3, which math-verify's parser in this process cannot use)."""
    where = CONSUMERS / "verl"
    if not (where / ".installed").exists():
        pytest.skip(f"verl is not installed in {where}; run `make consumers`")
    return where


def trl_math_shepherd() -> ModuleType:
    """``examples/datasets/math_shepherd.py`` of huggingface/trl v1.13.0 (a repository script, not in the
    wheel), as scripts/install_consumers.sh downloaded it."""
    path = CONSUMERS / "trl-v1.13.0" / "math_shepherd.py"
    if not path.exists():
        pytest.skip(f"{path} is missing (github.com was unreachable when `make consumers` ran)")
    return _from_file("trl_examples_math_shepherd", path)
