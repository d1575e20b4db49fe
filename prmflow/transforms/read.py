"""Read inputs from any Beam filesystem into Parsed records, with a dead-letter output."""

from __future__ import annotations

import contextlib
import logging
import os

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from prmflow.config import InputConfig, LimitsConfig
from prmflow.schemas import DeadLetter
from prmflow.sources import BadRecord, FileCount, Parsed, RawRecord, arith_raw_records, parse_raw, read_file
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, count, dead_letter
from prmflow.transforms.progress import FileProgress, Progress

log = logging.getLogger("prmflow")


_EXCLUDED: list[str] = []
"""Directories no input may read from while a run builds its graph: its own output (``excluding``)."""


@contextlib.contextmanager
def excluding(directory: str):
    """While the graph is built, inputs never match files under ``directory`` (a run's output: its
    lock, staging, cache and previous tables), whatever their glob says."""
    _EXCLUDED.append(directory.rstrip("/"))
    try:
        yield
    finally:
        _EXCLUDED.remove(directory.rstrip("/"))


def _inside(path: str, directory: str) -> bool:
    if "://" not in path and "://" not in directory:
        path = os.path.realpath(path)
    return path == directory or path.startswith(directory + "/")


def expand_path(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted so that reads are reproducible; an error if none. Files
    inside the output directory of the run being built are left out, with a warning."""
    matches = FileSystems.match([pattern])[0].metadata_list
    paths = sorted(m.path for m in matches)
    inside = [p for p in paths if any(_inside(p, d) for d in _EXCLUDED)]
    if inside:
        log.warning("input path %r matches %d file(s) inside the run's own output directory %s (e.g. %s); "
                    "they are not read", pattern, len(inside), _EXCLUDED[-1], inside[0])
        paths = [p for p in paths if p not in inside]
    if not paths:
        more = f" outside the run's output directory {_EXCLUDED[-1]}" if inside else ""
        raise FileNotFoundError(f"input path {pattern!r} matches no file{more}")
    return paths


FILES = "file_counts"


def file_size(path: str) -> int | None:
    try:
        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    except Exception:  # noqa: BLE001 - progress without a percentage
        return None


def share_items(spec: InputConfig, limits: LimitsConfig, path: str, split: int, splits: int):
    """The RawRecords of ``path`` numbered ``split`` modulo ``splits``, and its FileCount when
    ``split`` is 0. Each share scans the whole file but yields, and so parses, only its records, so
    the shares of one big file can go to different worker processes. Decompression goes by the file
    name (``sources.reader.decompressed``), so it is the same on every filesystem. Logs progress."""
    handle = []

    def open_file():
        handle.append(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
        return handle[0]

    def position() -> int | None:
        try:
            return handle[0].tell() if handle else None
        except (OSError, ValueError):  # closed, or a stream without a position
            return None

    progress = FileProgress(f"{spec.source_name}: {path.rsplit('/', 1)[-1]} (share {split + 1}/{splits})",
                            file_size(path))
    seen = 0
    for item in read_file(open_file, path, spec.format, limits.max_record_bytes, spec.limit):
        if isinstance(item, FileCount):
            if split == 0:
                yield item
            continue
        seen += 1
        if (seen - 1) % splits == split:
            progress.tick(position)
            yield item


class ReadRawRecords(beam.DoFn):
    """(path, split, splits) -> the file's RawRecords of that share (``share_items``); its
    FileCount, on the ``file_counts`` output, with split 0."""

    def __init__(self, spec: InputConfig, limits: LimitsConfig) -> None:
        self.spec, self.limits = spec, limits

    def setup(self) -> None:
        self.read = beam.metrics.Metrics.counter(NAMESPACE, "records_read")

    def process(self, element: tuple[str, int, int]):
        for item in share_items(self.spec, self.limits, *element):
            if isinstance(item, FileCount):
                yield beam.pvalue.TaggedOutput(FILES, item)
            else:
                self.read.inc()
                yield item


class ParseRecords(beam.DoFn):
    """RawRecord -> Parsed, or a dead letter (stage ``parse``) naming the reason. An exception that
    is not a BadRecord is a prmflow bug, but it is one row's bug: that row becomes an
    ``unexpected_error`` dead letter naming the exception, and the job goes on."""

    def __init__(self, spec: InputConfig) -> None:
        self.spec = spec

    def setup(self) -> None:
        self.progress = Progress(f"{self.spec.source_name}: parsed %d records so far (this worker)")

    def process(self, raw: RawRecord):
        parsed = parse_one(raw, self.spec, count)
        if isinstance(parsed, Parsed):
            self.progress.tick()
            yield parsed
        else:
            yield beam.pvalue.TaggedOutput(DEAD, parsed)


def parse_one(raw: RawRecord, spec: InputConfig, count) -> Parsed | DeadLetter:
    """One raw record parsed, or its dead letter (stage ``parse``) naming the reason; counts
    ``records_parsed``, ``parse_dead_<reason>`` and ``parse_replaced_surrogates`` with ``count``."""
    repairs: dict = {}
    try:
        parsed = parse_raw(raw, spec, repairs)
    except Exception as e:  # noqa: BLE001 - see ParseRecords
        error = e if isinstance(e, BadRecord) else unexpected(e)
        count(f"parse_dead_{error.reason}")
        return dead_letter("parse", spec.source_name, error, raw)
    if repairs.get("surrogates"):
        count("parse_replaced_surrogates", repairs["surrogates"])
    count("records_parsed")
    return parsed


def unexpected(e: Exception) -> BadRecord:
    return BadRecord("unexpected_error", f"{type(e).__name__}: {str(e)[:500]}")


def byte_tallies(item: RawRecord | FileCount, source: str):
    """((metric, source), n) for the reconciliation of rows and bytes (see ``pipelines.common.reconcile``):
    a record's span, and a file's bytes, separators and independently counted rows."""
    if isinstance(item, FileCount):
        yield ("input_bytes", source), item.bytes_read
        yield ("separator_bytes", source), item.separator_bytes
        yield ("rows_counted", source), item.rows_counted
    elif (span := record_span(item)) is not None:
        yield ("record_bytes", source), span


def record_span(raw: RawRecord) -> int | None:
    """The bytes a record spans in its file, for ``record_bytes``; None for one with no place in a
    file (generated records)."""
    return None if raw.offset is None else raw.size


class ReadInput(beam.PTransform):
    """One input of the config -> (raw records, parsed records, dead letters)."""

    def __init__(self, spec: InputConfig, limits: LimitsConfig, splits: int = 1) -> None:
        super().__init__(label=f"Read[{spec.source_name}]")
        self.spec, self.limits, self.splits = spec, limits, splits

    def expand(self, pbegin):
        name = self.spec.source_name
        if self.spec.format == "arith":
            raws = (
                pbegin
                | "Seed" >> beam.Create([(self.spec.count, self.spec.seed)])
                | "Generate" >> beam.FlatMapTuple(arith_raw_records)
            )
            files = pbegin | "NoFiles" >> beam.Create([])
        else:
            raws, files = (
                pbegin
                | "ListFiles" >> beam.Create(
                    [(path, i, self.splits) for path in expand_path(self.spec.path) for i in range(self.splits)])
                | "ReadRecords" >> beam.ParDo(ReadRawRecords(self.spec, self.limits)).with_outputs(FILES, main="raws")
            )
        parsed, dead = raws | "Parse" >> beam.ParDo(ParseRecords(self.spec)).with_outputs(DEAD, main="parsed")
        #: ((metric, source), n) of input_bytes, record_bytes, separator_bytes, rows_counted; the
        #: pipeline adds it to its tallies so that reconcile() can check rows and bytes per input
        self.tallies = (
            (raws | "RecordBytes" >> beam.FlatMap(byte_tallies, name),  # fused with the read: no record is shipped
             files | "FileBytes" >> beam.FlatMap(byte_tallies, name))
            | "FlattenBytes" >> beam.Flatten()
            | "SumBytes" >> beam.CombinePerKey(sum)
        )
        return raws, parsed, dead
