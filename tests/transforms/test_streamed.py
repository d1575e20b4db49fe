"""The streamed import DoFn (transforms/streamed.py): its GC settings are scoped to a share, and on
the generated arith input (gold attached, graded with ``math``) it writes what the per-stage graph
writes, byte for byte (the malformed corpus is compared in tests/pipelines/test_malformed_inputs.py)."""

from __future__ import annotations

import gc

import pytest
import yaml

from prmflow.pipelines import label
from prmflow.schemas import TABLES
from prmflow.transforms import streamed as streamed_import
from prmflow.transforms.streamed import YOUNG_GC_THRESHOLD, import_gc


def test_import_gc_is_scoped_to_the_share():
    before = gc.get_threshold()
    with import_gc():
        young, _, old = gc.get_threshold()
        assert young >= YOUNG_GC_THRESHOLD and old > before[2]
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), import_gc():
        raise RuntimeError("a failing share")
    assert gc.get_threshold() == before


@pytest.mark.parametrize("table_rows", [7, 1000])
def test_arith_import_equals_the_per_stage_graph(tmp_path, monkeypatch, table_rows):
    """The streamed import builds its rows as Arrow columns, TABLE_ROWS records at a time; the
    per-stage graph as dicts: the shards are the same bytes."""
    monkeypatch.setattr(streamed_import, "TABLE_ROWS", table_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "ar", "inputs": [{"name": "a", "format": "arith", "count": 40, "seed": 5}],
                                   "outcome": {"labeler": "math"}, "output": {"num_shards": 2}}))
    streamed = label.run([str(cfg), "--output", str(tmp_path / "streamed")])
    assert streamed["counts"]["trajectories"] == {"a": 40}
    assert streamed["beam_counters"]["gold_attached"] == 40
    monkeypatch.setattr(label, "streams", lambda config: False)
    staged = label.run([str(cfg), "--output", str(tmp_path / "staged")])
    assert staged["counts"] == streamed["counts"] and staged["reconciliation"]["ok"]
    for table in TABLES:
        for path in sorted((tmp_path / "streamed" / table).iterdir()):
            assert path.read_bytes() == (tmp_path / "staged" / table / path.name).read_bytes(), path.name
