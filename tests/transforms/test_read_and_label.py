"""Beam transforms on TestPipeline: parse with dead letters, segment, label outcomes."""

import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from prmflow.config import InputConfig, OutcomeConfig
from prmflow.core.segment import SegmentConfig
from prmflow.sources import RawRecord
from prmflow.transforms.dead_letters import DEAD
from prmflow.transforms.label import LabelOutcomes, SegmentDrafts
from prmflow.transforms.read import ParseRecords

SPEC = InputConfig(path="mem", format="gsm8k")
OPTIONS = ["--runner=FnApiRunner"]


def raw(i, obj):
    return RawRecord("mem.jsonl", i, obj if isinstance(obj, str) else json.dumps(obj))


def test_parse_segment_label_with_dead_letters():
    rows = [
        raw(1, {"question": "2+3?", "answer": "2+3=<<2+3=5>>5\n#### 5"}),
        raw(2, "{not json"),
        raw(3, {"question": "1+1?", "answer": "1+1=2\n#### 3"}),  # judged against its own ####
    ]
    with TestPipeline(options=beam.options.pipeline_options.PipelineOptions(OPTIONS)) as p:
        parsed, dead = p | beam.Create(rows) | beam.ParDo(ParseRecords(SPEC)).with_outputs(DEAD, main="parsed")
        items, seg_dead = parsed | beam.ParDo(SegmentDrafts(SegmentConfig(), 10)).with_outputs(DEAD, main="items")
        labeled = items | LabelOutcomes(OutcomeConfig("math", {"timeout_s": None}))
        assert_that(
            labeled | beam.Map(lambda it: (it[0].prompt, it[1].steps, it[1].outcome, it[1].outcome_status)),
            equal_to([("2+3?", ("2+3=5", "#### 5"), 1.0, "ok"), ("1+1?", ("1+1=2", "#### 3"), 1.0, "ok")]),
            label="labeled",
        )
        assert_that(dead | beam.Map(lambda d: (d.location, d.reason, d.stage)), equal_to([(2, "bad_json", "parse")]), label="dead")
        assert_that(seg_dead, equal_to([]), label="seg_dead")


def test_graded_tables_are_the_dict_rows_and_write_a_lone_surrogate_as_they_do():
    """``problem_table``/``graded_tables`` (the streamed import's columnar rows) equal the dict rows
    converted; a batch with a lone surrogate in a step goes the dict way, U+FFFD in its place."""
    from prmflow.schemas import Problem, Trajectory
    from prmflow.transforms.label import (
        PART_SCHEMAS,
        graded_tables,
        problem_row,
        problem_table,
        step_rows,
        trajectory_row,
    )
    from prmflow.transforms.write import rows_table

    def item(k: int, step: str) -> tuple:
        problem = Problem(problem_id=f"{k:016x}", source="s", domain="math", prompt=f"q{k}",
                          source_file=None if k % 2 else "a.jsonl", source_index=None if k % 3 else k,
                          metadata={"id": k} if k % 2 else None)
        steps = (step, f"so {k}")
        return problem, Trajectory(trajectory_id=f"{k + 100:016x}", problem_id=problem.problem_id, source="s",
                                   domain="math", origin="imported", text="\n".join(steps), steps=steps,
                                   step_spans=((0, 1), (2, 3)), step_segments=("response", "response"),
                                   outcome=k % 2 * 1.0, gold_step_labels=(1.0, None) if k % 2 else None)

    provenance = {"config": "c"}
    for items in ([item(k, f"step {k}") for k in range(6)], [item(0, "ok"), item(1, "bad \ud800")]):
        trajectories, steps = graded_tables(items, provenance)
        assert trajectories.equals(rows_table([trajectory_row(i) for i in items], PART_SCHEMAS["trajectories"]))
        assert steps.equals(rows_table([r for i in items for r in step_rows(i, provenance)], PART_SCHEMAS["steps"]))
        problems = [p for p, _ in items]
        assert problem_table(problems).equals(rows_table([problem_row(p) for p in problems], PART_SCHEMAS["problems"]))
    assert "bad \ufffd" in steps["step_text"].to_pylist()
