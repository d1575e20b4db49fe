"""The GPU machine's contract: the hf sampler, the PRM trainer and scorer, and bench/gpu.py (with the half
of bench/prm.py it uses) import nothing of Beam, vLLM, DuckDB, math_verify or gguf, which that machine
lacks. Checked in a fresh interpreter whose import system refuses those packages outright, so a lazy
import that runs at import time fails here too, not only on the device."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GPU_SCRIPT = REPO / "bench" / "gpu.py"
ABSENT = ("apache_beam", "vllm", "duckdb", "math_verify", "gguf")
DEVICE_MODULES = ("prmflow.samplers", "prmflow.samplers.hf_backend", "prmflow.prm.train", "prmflow.prm.scorer",
                  "prmflow.prm.model")

CHECK = """
import importlib, importlib.abc, json, sys

ABSENT = {absent!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ImportError(f"{{name}} is absent on the device machine")
        return None

sys.meta_path.insert(0, Refuse())
sys.path.insert(0, {bench!r})
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(ABSENT))))
"""


def gpu_script_imports() -> set[str]:
    """Every prmflow module bench/gpu.py imports, at module level or inside its functions."""
    found = set()
    for node in ast.walk(ast.parse(GPU_SCRIPT.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prmflow"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("prmflow"))
    return found


def test_the_device_side_imports_none_of_the_cpu_side_engines() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    modules = [*DEVICE_MODULES, *sorted(gpu_script_imports()), "gpu"]
    assert "prmflow.samplers" in modules and len(modules) > len(DEVICE_MODULES) + 1  # the AST walk found imports
    code = CHECK.format(absent=ABSENT, bench=str(GPU_SCRIPT.parent), modules=modules)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_blocker_blocks() -> None:
    """The check above would catch an import: the same interpreter set-up refuses duckdb."""
    code = CHECK.format(absent=ABSENT, bench=str(GPU_SCRIPT.parent), modules=["duckdb"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "absent on the device machine" in proc.stderr
