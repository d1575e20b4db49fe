"""Streamed import: one DoFn takes a share of an input file all the way to part files.

An import-and-grade run (``pipelines.label.streams``: no engine stage, nothing that groups rows)
does for each record what the per-stage DoFns of an engine run do, by calling the same functions:
read (``share_items``), parse (``parse_one``), join references, segment (``segment_one``), attach
gold (``with_gold``), grade in batches (``label_batch``), build the problem, trajectory and step
rows as Arrow tables TABLE_ROWS records at a time (``problem_table``, ``graded_tables``: the rows
the per-stage graph builds as dicts, a column at a time) and the dead-letter rows as dicts, and
buffer them in part writers (``PartWriter``). It does it in one DoFn whose
element is a whole share of a file, so Beam dispatches, encodes and counts one element per share
instead of about ten per record: on a 2-core machine that per-record dispatch was a fifth of an
import run. Counters are summed per share and reported once (``BundleCounts``); the manifest's
tallies (records read, parsed and dead, solutions, byte counts) leave on the ``tallies`` output as
((metric, key), n), summed per share. Dead letters, counts and bytes are those of the per-stage
graph (tests/pipelines/test_malformed_inputs.py runs both on the malformed corpus,
tests/transforms/test_streamed.py on the generated arith input).
"""

from __future__ import annotations

import contextlib
import gc

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from prmflow.config import InputConfig, LimitsConfig, OutcomeConfig
from prmflow.core.segment import SegmentConfig
from prmflow.schemas import TABLES, to_row
from prmflow.sources import FileCount, Parsed, arith_raw_records
from prmflow.transforms.dead_letters import BundleCounts
from prmflow.transforms.label import (
    graded_tables,
    join_reference,
    label_batch,
    problem_table,
    segment_one,
    with_gold,
)
from prmflow.transforms.progress import Progress
from prmflow.transforms.read import byte_tallies, parse_one, record_span, share_items
from prmflow.transforms.write import PartWriter, RowOrder

TALLIES = "tallies"
IMPORT_TABLES = ("problems", "trajectories", "steps", "dead_letters")
YOUNG_GC_THRESHOLD = 20_000
# Problems, and graded trajectories, become Arrow tables this many at a time (``problem_table``,
# ``graded_tables``). 50k synthetic records (250k steps) built in batches of 64, 1,000 and 5,000:
# 1.6, 0.9 and 1.1 CPU s; as dict rows 3.2-4.0 s (the smallest batches fastest, in the CPU's caches).
TABLE_ROWS = 1_000


@contextlib.contextmanager
def import_gc():
    """While a share is imported: collect the youngest generation every YOUNG_GC_THRESHOLD
    container allocations instead of Python's 700, and make no full collection. An import
    allocates millions of short-lived dicts and dataclasses that form no cycles; with the defaults
    the collector re-walked every object of the process (modules, Beam's worker state) on each full
    collection: about 5% of an import run (bench/scale.py, 100k trajectories: 2.1 s of GC, 0.4 s
    with these settings). Young cycles are still collected; the thresholds are restored after, so
    the process (a notebook, a test) keeps its own settings."""
    saved = gc.get_threshold()
    gc.set_threshold(max(YOUNG_GC_THRESHOLD, saved[0]), saved[1], 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


class ImportShare(beam.DoFn):
    """A share of one input -> the stats of the part files written (main output) and the manifest's
    tallies (``tallies`` output). The element is (path, split, splits) for a file input, and
    (count, seed) for the generated ``arith`` input. An optional side input maps normalised problem
    text to reference answers (the input's ``references``)."""

    def __init__(self, spec: InputConfig, limits: LimitsConfig, segment: SegmentConfig,
                 outcome: OutcomeConfig, provenance: dict, out_dir: str, num_shards: int,
                 orders: dict[str, str | RowOrder], batch_size: int = 64) -> None:
        self.spec, self.limits, self.segment = spec, limits, segment
        self.outcome, self.provenance, self.out_dir, self.num_shards = outcome, provenance, out_dir, num_shards
        self.orders, self.batch_size = orders, batch_size

    def setup(self) -> None:
        self.labeler = self.outcome.make_labeler()
        self.progress = Progress("labeled %d trajectories so far (this worker)")

    def start_bundle(self) -> None:
        self.writers = {t: PartWriter(self.out_dir, t, TABLES[t][1], self.orders[t], self.num_shards)
                        for t in IMPORT_TABLES}

    def _items(self, element):
        if self.spec.format == "arith":
            return arith_raw_records(*element)
        return share_items(self.spec, self.limits, *element)

    def process(self, element, references: dict | None = None):
        with import_gc():
            yield from self._import(element, references)

    def _import(self, element, references: dict | None):
        name, counts, tallies = self.spec.source_name, BundleCounts(), {}
        spec, segment, max_steps, batch_size = self.spec, self.segment, self.limits.max_steps, self.batch_size
        writers = self.writers
        parts: list[dict] = []
        batch: list = []
        problems: list = []  # parsed, waiting to become a table
        graded: list = []  # (problem, trajectory) graded, waiting to become tables
        # the per-record tallies are summed in these locals and added once at the end, not with a
        # call (and a generator, for the byte span) per record
        read = parsed_n = dead_n = 0
        record_bytes = None  # None: no record with a byte span (generated ones have none)
        solutions: dict[str, int] = {}

        def tally(metric: str, key, n: int = 1) -> None:
            tallies[(metric, key)] = tallies.get((metric, key), 0) + n

        def dead(letter) -> None:
            parts.extend(self.writers["dead_letters"].add(to_row(letter)))

        def grade() -> None:
            graded.extend(label_batch(self.labeler, self.outcome.labeler, batch, counts))
            self.progress.tick(len(batch))
            batch.clear()
            if len(graded) >= TABLE_ROWS:
                to_tables()

        def problems_to_table() -> None:
            parts.extend(writers["problems"].add_table(problem_table(problems)))
            problems.clear()

        def to_tables() -> None:
            if problems:
                problems_to_table()
            if graded:
                trajectories, steps = graded_tables(graded, self.provenance)
                parts.extend(writers["trajectories"].add_table(trajectories))
                parts.extend(writers["steps"].add_table(steps))
                graded.clear()

        for item in self._items(element):
            if isinstance(item, FileCount):
                for key, n in byte_tallies(item, name):
                    tally(*key, n)
                continue
            span = record_span(item)
            if span is not None:
                record_bytes = span + (record_bytes or 0)
            read += 1
            parsed = parse_one(item, spec, counts)
            if not isinstance(parsed, Parsed):
                dead_n += 1
                dead(parsed)
                continue
            parsed_n += 1
            if references is not None:
                parsed = join_reference(parsed, references)
            problem = parsed.problem
            problems.append(problem)
            if len(problems) >= TABLE_ROWS:
                problems_to_table()
            solutions[problem.source] = solutions.get(problem.source, 0) + len(parsed.drafts)
            for out in segment_one(parsed, segment, max_steps, counts):
                if isinstance(out, tuple):
                    batch.append(with_gold(out, counts))
                    if len(batch) >= batch_size:
                        grade()
                else:
                    dead(out)
            if parts:
                yield from parts
                parts.clear()
        if batch:
            grade()
        to_tables()
        yield from parts
        if read and spec.format != "arith":  # as ReadRawRecords: the Beam counter counts rows of files
            counts("records_read", read)
        counts.flush()
        for metric, n in (("records_read", read), ("records_parsed", parsed_n), ("records_dead", dead_n)):
            if n:
                tally(metric, name, n)
        if record_bytes is not None:
            tally("record_bytes", name, record_bytes)
        for source, n in solutions.items():
            tally("solutions", source, n)
        for key, n in sorted(tallies.items(), key=repr):
            yield beam.pvalue.TaggedOutput(TALLIES, (key, n))

    def finish_bundle(self):
        for table in IMPORT_TABLES:
            for stats in self.writers[table].close():
                yield GlobalWindows.windowed_value(stats)

    def teardown(self) -> None:
        labeler = getattr(self, "labeler", None)
        if labeler is not None:
            labeler.close()


__all__ = ["IMPORT_TABLES", "TALLIES", "ImportShare", "import_gc"]
