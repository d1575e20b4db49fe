"""DoFns over the pure builders: segment drafts into trajectories, label outcomes, emit step rows."""

from __future__ import annotations

import dataclasses
import logging

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows

from prmflow.config import OutcomeConfig
from prmflow.core.segment import SegmentConfig
from prmflow.core.trajectories import from_draft, step_label_columns, step_label_rows, with_outcome
from prmflow.domains import attach_gold
from prmflow.labelers.outcome import reference_of
from prmflow.schemas import TABLES, Problem, Trajectory, to_columns, to_row
from prmflow.sources import BadRecord, Parsed, normalise_prompt
from prmflow.transforms.dead_letters import DEAD, NAMESPACE, BundleCounts, count, dead_letter
from prmflow.transforms.progress import Progress
from prmflow.transforms.write import part_schema, read_key, read_key_columns, rows_table

log = logging.getLogger("prmflow")


def join_reference(parsed: Parsed, references: dict[str, str] | None) -> Parsed:
    """Fill a missing reference answer from the references input, matched by problem text."""
    if not references or parsed.problem.reference_answer is not None:
        return parsed
    ref = references.get(normalise_prompt(parsed.problem.prompt))
    if ref is None:
        beam.metrics.Metrics.counter(NAMESPACE, "references_unmatched").inc()
        return parsed
    return dataclasses.replace(parsed, problem=dataclasses.replace(parsed.problem, reference_answer=ref))


def segment_one(parsed: Parsed, config: SegmentConfig, max_steps: int, count):
    """(problem, trajectory) for each imported solution of ``parsed``, or a dead letter (stage
    ``segment``) for a solution that breaks segmentation; counts ``solutions_read`` with ``count``."""
    for i, draft in enumerate(parsed.drafts):
        count("solutions_read")
        try:
            trajectory = from_draft(parsed.problem, draft, config, max_steps)
        except Exception as e:  # noqa: BLE001 - a solution that breaks segmentation is its own dead letter
            if not isinstance(e, BadRecord):
                e = BadRecord("unexpected_error", f"{type(e).__name__}: {e}")
            raw = f"problem_id={parsed.problem.problem_id} solution={i}\n{draft.text or draft.steps!r}"
            count(f"segment_dead_{e.reason}")
            yield dataclasses.replace(
                dead_letter("segment", parsed.problem.source, e, raw_text=raw),
                source_file=parsed.problem.source_file, location=parsed.problem.source_index,
            )
            continue
        yield parsed.problem, trajectory


class SegmentDrafts(beam.DoFn):
    """Parsed -> (problem, trajectory) per imported solution; a bad solution is a dead letter."""

    def __init__(self, config: SegmentConfig, max_steps: int) -> None:
        self.config, self.max_steps = config, max_steps

    def process(self, parsed: Parsed):
        for out in segment_one(parsed, self.config, self.max_steps, count):
            yield out if isinstance(out, tuple) else beam.pvalue.TaggedOutput(DEAD, out)


def with_gold(item: tuple[Problem, Trajectory], count) -> tuple[Problem, Trajectory]:
    """The item with exact gold where its domain computes it (arith); counts ``gold_<status>``."""
    problem, trajectory = item
    try:
        trajectory, status = attach_gold(problem, trajectory)
    except Exception:  # noqa: BLE001 - no gold is a loss of truth, not of the row: counted, kept
        log.exception("gold failed for trajectory %s", trajectory.trajectory_id)
        status = "error"
    if status != "none":
        count(f"gold_{status}")
    return problem, trajectory


class AttachGold(beam.DoFn):
    """(problem, trajectory) -> the same with exact gold where its domain computes it (arith)."""

    def process(self, item: tuple[Problem, Trajectory]):
        yield with_gold(item, count)


def label_batch(labeler, name: str, batch: list[tuple[Problem, Trajectory]], count) -> list[tuple[Problem, Trajectory]]:
    """The items with the outcome labeler ``name``'s verdicts on their responses, graded at once
    (``label_many`` where the labeler has it); counts ``outcome_<status>``."""
    pairs = [(t.response or t.text, reference_of(name, p)) for p, t in batch]
    label_many = getattr(labeler, "label_many", None)
    outcomes = label_many(pairs) if label_many else [labeler.label(*pair) for pair in pairs]
    out = []
    for (problem, trajectory), outcome in zip(batch, outcomes, strict=True):
        count(f"outcome_{outcome.status}")
        out.append((problem, with_outcome(trajectory, outcome)))
    return out


class _LabelOutcomeBatch(beam.DoFn):
    def __init__(self, config: OutcomeConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.labeler = self.config.make_labeler()
        self.progress = Progress("labeled %d trajectories so far (this worker)")

    def process(self, batch: list[tuple[Problem, Trajectory]]):
        counts = BundleCounts()
        yield from label_batch(self.labeler, self.config.labeler, batch, counts)
        counts.flush()
        self.progress.tick(len(batch))

    def teardown(self) -> None:
        labeler = getattr(self, "labeler", None)
        if labeler is not None:
            labeler.close()


class FixedBatches(beam.DoFn):
    """Elements -> lists of ``size`` (the last of a bundle shorter). Beam's BatchElements fits a
    timing model with numpy on every batch to tune its size, which costs more than grading a batch
    of simple answers; a labeler's batch needs no tuning."""

    def __init__(self, size: int) -> None:
        self.size = size

    def start_bundle(self) -> None:
        self.batch: list = []

    def process(self, element):
        self.batch.append(element)
        if len(self.batch) >= self.size:
            batch, self.batch = self.batch, []
            yield batch

    def finish_bundle(self):
        if self.batch:
            batch, self.batch = self.batch, []
            yield GlobalWindows.windowed_value(batch)


class LabelOutcomes(beam.PTransform):
    """(problem, trajectory) -> the same with the outcome labeler's verdict on the response. Items
    go to the labeler in batches: the math pool, the code sandbox pool and a judge's engine each
    grade a whole batch at once (``label_many``). Verdicts are per item, so batch composition does
    not change them."""

    def __init__(self, config: OutcomeConfig, max_batch: int = 64) -> None:
        super().__init__()
        self.config, self.max_batch = config, max_batch

    def expand(self, items):
        return (
            items
            | "BatchForLabeler" >> beam.ParDo(FixedBatches(self.max_batch))
            | "Label" >> beam.ParDo(_LabelOutcomeBatch(self.config))
        )


# Rows for the part writers: each carries the hidden read-order keys of its problem (``read_key``),
# by which the merge keeps the first read of a duplicate id.

def problem_row(problem: Problem) -> dict:
    return {**to_row(problem), **read_key(problem)}


def trajectory_row(item: tuple[Problem, Trajectory]) -> dict:
    return {**to_row(item[1]), **read_key(item[0])}


def step_rows(item: tuple[Problem, Trajectory], provenance: dict):
    problem, trajectory = item
    key = read_key(problem)
    for row in step_label_rows(trajectory, provenance):
        row.update(key)
        yield row


# The same rows as Arrow tables (the part writers' schema, read-order keys included), built a column
# at a time from a batch of records (``to_columns``, ``step_label_columns``): the streamed import's
# rows, where dicts and their conversion were a third of a run. A batch with a lone surrogate in
# some text goes the dict way (``rows_table`` writes U+FFFD in its place).

PART_SCHEMAS = {table: part_schema(TABLES[table][1]) for table in ("problems", "trajectories", "steps")}


def problem_table(problems: list[Problem]) -> pa.Table:
    schema = PART_SCHEMAS["problems"]
    try:
        return pa.Table.from_arrays([*to_columns(problems, Problem), *read_key_columns(problems)], schema=schema)
    except UnicodeEncodeError:
        return rows_table([problem_row(p) for p in problems], schema)


def graded_tables(items: list[tuple[Problem, Trajectory]], provenance: dict) -> tuple[pa.Table, pa.Table]:
    """(trajectories, steps) of ``items``: the rows of ``trajectory_row`` and ``step_rows``."""
    schemas = PART_SCHEMAS["trajectories"], PART_SCHEMAS["steps"]
    try:
        trajectories = [t for _, t in items]
        columns = to_columns(trajectories, Trajectory)
        keys = read_key_columns([p for p, _ in items])
        steps, owner = step_label_columns(trajectories, provenance, columns)
        return (pa.Table.from_arrays([*columns, *keys], schema=schemas[0]),
                pa.Table.from_arrays([*steps, *(key.take(owner) for key in keys)], schema=schemas[1]))
    except UnicodeEncodeError:
        return (rows_table([trajectory_row(item) for item in items], schemas[0]),
                rows_table([row for item in items for row in step_rows(item, provenance)], schemas[1]))
