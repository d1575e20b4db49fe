"""bench/scale.py and bench/breakdown.py: the bare loop does the pipeline's work (its rows are checked against the
pipeline's), and the breakdown splits an import into stages that add up to the whole."""

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
    source = Path(scale.BARE).read_text()
    assert 'metadata={"id": obj["id"]}' in source
    broken = tmp_path / "bare_loop.py"
    broken.write_text(source.replace('metadata={"id": obj["id"]}', "metadata=None"))
    monkeypatch.setattr(scale, "BARE", str(broken))
    data = tmp_path / "synthetic.jsonl"
    scale.write_corpus(data, 40)
    with pytest.raises(SystemExit, match="bare loop.s problems"):
        scale.check_same_rows(tmp_path, data, "exact", n=30)


def test_the_breakdown_accounts_for_every_stage(capsys):
    spec = importlib.util.spec_from_file_location("bench_breakdown", REPO / "bench" / "breakdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--records", "200", "--repeat", "1"])
    stages = [r["stage"] for r in results]
    assert stages == ["read", "parse", "segment", "grade", "rows", "write", "loop", "whole"]
    by = {r["stage"]: r for r in results}
    for side in ("pipeline_s", "bare_s"):  # the loop is what the whole has beyond its stages
        assert by["loop"][side] == pytest.approx(by["whole"][side] - sum(by[s][side] for s in stages[:6]))
        assert all(by[s][side] > 0 for s in stages[:6]) and by["whole"][side] > 0
    assert "bare / pipeline" in capsys.readouterr().out
