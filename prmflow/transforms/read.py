"""Read inputs from any Beam filesystem into Parsed records, with a dead-letter output."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from prmflow.config import InputConfig, LimitsConfig
from prmflow.sources import BadRecord, RawRecord, arith_raw_records, iter_raw_records, parse_raw
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count_dead, dead_letter
from prmflow.transforms.progress import Progress


def expand_path(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted so that reads are reproducible; an error if none."""
    matches = FileSystems.match([pattern])[0].metadata_list
    paths = sorted(m.path for m in matches)
    if not paths:
        raise FileNotFoundError(f"input path {pattern!r} matches no file")
    return paths


class ReadRawRecords(beam.DoFn):
    def __init__(self, spec: InputConfig, limits: LimitsConfig) -> None:
        self.spec, self.limits = spec, limits

    def setup(self) -> None:
        self.read = beam.metrics.Metrics.counter(NAMESPACE, "records_read")

    def process(self, path: str):
        with FileSystems.open(path, compression_type="uncompressed") as stream:
            for raw in iter_raw_records(stream, path, self.spec.format, self.limits.max_record_bytes, self.spec.limit):
                self.read.inc()
                yield raw


class ParseRecords(beam.DoFn):
    """RawRecord -> Parsed, or a dead letter (stage ``parse``) naming the reason."""

    def __init__(self, spec: InputConfig) -> None:
        self.spec = spec

    def setup(self) -> None:
        self.parsed = beam.metrics.Metrics.counter(NAMESPACE, "records_parsed")
        self.progress = Progress(f"{self.spec.source_name}: parsed %d records so far (this worker)")

    def process(self, raw: RawRecord):
        try:
            parsed = parse_raw(raw, self.spec)
        except BadRecord as e:
            count_dead("parse", e.reason)
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter("parse", self.spec.source_name, e, raw))
            return
        self.parsed.inc()
        self.progress.tick()
        yield parsed


class ReadInput(beam.PTransform):
    """One input of the config -> (raw records, parsed records, dead letters)."""

    def __init__(self, spec: InputConfig, limits: LimitsConfig) -> None:
        super().__init__(label=f"Read[{spec.source_name}]")
        self.spec, self.limits = spec, limits

    def expand(self, pbegin):
        if self.spec.format == "arith":
            raws = (
                pbegin
                | "Seed" >> beam.Create([(self.spec.count, self.spec.seed)])
                | "Generate" >> beam.FlatMapTuple(arith_raw_records)
            )
        else:
            raws = (
                pbegin
                | "ListFiles" >> beam.Create(expand_path(self.spec.path))
                | "ReadRecords" >> beam.ParDo(ReadRawRecords(self.spec, self.limits))
            )
        parsed, dead = raws | "Parse" >> beam.ParDo(ParseRecords(self.spec)).with_outputs(DEAD, main="parsed")
        return raws, parsed, dead
