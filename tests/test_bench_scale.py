"""bench/scale.py's bare loop must do the pipeline's work: its rows are checked against the pipeline's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bare_loop_writes_the_pipelines_rows(tmp_path, scale):
    data = tmp_path / "synthetic.jsonl"
    scale.write_corpus(data, 40)
    scale.check_same_rows(tmp_path, data, "exact", n=30)  # exits if any table differs


def test_a_bare_loop_that_drops_a_field_is_caught(tmp_path, scale, monkeypatch):
    monkeypatch.setattr(scale, "BARE", scale.BARE.replace('metadata={"id": obj["id"]}', "metadata=None"))
    data = tmp_path / "synthetic.jsonl"
    scale.write_corpus(data, 40)
    with pytest.raises(SystemExit, match="problems rows differ"):
        scale.check_same_rows(tmp_path, data, "exact", n=30)
