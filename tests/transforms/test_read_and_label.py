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
