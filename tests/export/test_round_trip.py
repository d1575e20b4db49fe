"""Export the native format, import it again through the generic input formats, and get the same labels."""

from __future__ import annotations

import pytest
import yaml
from helpers import all_rows, do_export, sql

from prmflow.pipelines.label import run


@pytest.mark.parametrize("file_format, field", [("jsonl", "gold_step_labels"), ("parquet", "step_scores")])
def test_native_export_reimports_with_its_labels(mc_run, tmp_path, file_format, field):
    out = do_export(mc_run, tmp_path / "x", format="prmflow", label="soft", file_format=file_format, val_fraction=0.3)
    exported = all_rows(out)
    assert any(0 < v < 1 for r in exported for v in r["labels"])  # soft labels, not only 0/1
    inputs = [{"name": split, "format": file_format, "path": str(out / f"{split}.{file_format}"),
               "import_solutions": True, "fields": {"prompt": "prompt", "steps": "steps", field: "labels"}}
              for split in ("train", "validation")]
    config = tmp_path / "reimport.yaml"
    config.write_text(yaml.safe_dump({"name": "reimport", "inputs": inputs, "outcome": {"labeler": "exact"}}))
    manifest = run([str(config), "--output", str(tmp_path / "again")])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    column = {"gold_step_labels": "gold_label", "step_scores": "prm_score"}[field]
    again = sql(tmp_path / "again", f"""
        SELECT t.prompt, list(s.step_text ORDER BY s.step_index), list(s.{column} ORDER BY s.step_index)
        FROM steps s JOIN (SELECT trajectory_id, p.prompt FROM trajectories JOIN problems p USING (problem_id)) t
        USING (trajectory_id) GROUP BY s.trajectory_id, t.prompt""")
    # identical texts sampled twice from one problem are one trajectory on import (kept once, the first read)
    candidates: dict[tuple, list[list[float]]] = {}
    for r in exported:
        candidates.setdefault((r["prompt"], tuple(r["steps"])), []).append(r["labels"])
    assert len(again) == len(candidates) == sql(tmp_path / "again", "SELECT count(*) FROM trajectories")[0][0]
    for prompt, steps, labels in again:
        assert labels in candidates[(prompt, tuple(steps))]
    exact = [k for k, v in candidates.items() if len(v) == 1]
    assert len(exact) > len(candidates) // 2
