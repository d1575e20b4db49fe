"""An import-and-grade run streams: no stage groups rows, so memory does not grow with the input
(rows reach the shards through part files; see transforms/write.py). Runs with engine stages keep
their dedupes, so a duplicate is never sampled twice."""

from __future__ import annotations

import json

import apache_beam as beam
import yaml
from apache_beam.pipeline import PipelineVisitor

from prmflow.config import load_config
from prmflow.pipelines.common import beam_options
from prmflow.pipelines.label import build, streams

# groups over a handful of keys: the manifest's tallies, byte counts, and Create's reshuffle of its
# few elements (files, shards); none holds rows
SMALL_GROUPS = ("/Sum/GroupByKey", "/SumBytes/GroupByKey", "/Reshuffle/")


def grouping_transforms(tmp_path, config: dict) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    p = beam.Pipeline(options=beam_options([]))
    build(p, load_config(str(path)), str(tmp_path / "out"))
    found = []

    class Visitor(PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.GroupByKey):
                found.append(node.full_label)

    p.visit(Visitor())
    return found


def jsonl_config(tmp_path) -> dict:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"q": "1+1?", "sol": "1+1 = 2\nThe answer is 2", "ans": "2"}) + "\n")
    return {"name": "s", "inputs": [{"name": "g", "format": "jsonl", "path": str(data),
                                     "fields": {"prompt": "q", "solution": "sol", "reference_answer": "ans"}}],
            "outcome": {"labeler": "math"}, "output": {"num_shards": 3}}


def test_an_import_run_groups_no_rows(tmp_path):
    config = jsonl_config(tmp_path)
    assert streams(load_config_from(tmp_path, config))
    groups = grouping_transforms(tmp_path, config)
    assert groups, "the tallies group by metric"
    holding_rows = [g for g in groups if not any(s in g for s in SMALL_GROUPS)]
    assert holding_rows == [], groups


def test_engine_stages_keep_their_dedupes(tmp_path):
    config = {**jsonl_config(tmp_path), "sampler": {"backend": "fake", "model": "fake"}, "sampling": {"n": 2}}
    assert not streams(load_config_from(tmp_path, config))
    groups = grouping_transforms(tmp_path, config)
    assert any(g.startswith("DedupeTrajectories/") for g in groups)
    assert any(g.startswith("DedupeProblems/") for g in groups)


def load_config_from(tmp_path, config: dict):
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(str(path))


def test_read_splits_below_one_is_a_config_error_before_any_work(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(jsonl_config(tmp_path)))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "prmflow", "run", str(path), "--output", str(out), "--read-splits", "0"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["prmflow run: --read-splits must be an integer >= 1, got 0"]
    assert not out.exists()


def test_local_workers_default_follows_direct_num_workers():
    from prmflow.pipelines.label import local_workers

    assert local_workers(beam_options([])) == 1
    assert local_workers(beam_options(["--direct_num_workers=3"])) == 3
    assert local_workers(beam_options(["--runner=DataflowRunner", "--direct_num_workers=3"])) == 1


def test_an_import_run_is_one_dofn_per_share(tmp_path):
    """Beam dispatches one element per share of a file, not about ten per record: the import run's
    graph reads, parses, grades and writes parts in ImportShare (transforms/streamed.py); the
    per-record stage DoFns are only in runs with engine stages."""
    from prmflow.transforms.label import SegmentDrafts
    from prmflow.transforms.read import ParseRecords
    from prmflow.transforms.streamed import ImportShare

    def dofns(config):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config))
        p = beam.Pipeline(options=beam_options([]))
        build(p, load_config(str(path)), str(tmp_path / "out"), read_splits=3)
        found = []

        class Visitor(PipelineVisitor):
            def visit_transform(self, node):
                if isinstance(node.transform, beam.ParDo):
                    found.append(type(node.transform.fn))

        p.visit(Visitor())
        return found

    streamed = dofns(jsonl_config(tmp_path))
    assert streamed.count(ImportShare) == 1
    assert ParseRecords not in streamed and SegmentDrafts not in streamed
    engine = dofns({**jsonl_config(tmp_path), "sampler": {"backend": "fake", "model": "fake"}, "sampling": {"n": 2}})
    assert ImportShare not in engine and ParseRecords in engine and SegmentDrafts in engine
