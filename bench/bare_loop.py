"""The bare-Python import the pipeline is measured against (``bench/scale.py``, ``bench/breakdown.py``).

One process reads the synthetic generic-JSONL file of ``bench/scale.py``, parses each row, segments
its solution into steps, grades it with the same outcome labeler in batches of 64, builds the same
problem, trajectory and step rows as the pipeline (``bench/scale.py`` checks them row for row) and
writes the three tables with pyarrow. It converts rows to Arrow every 5,000 and makes no full
garbage collections, as the pipeline's import does (``transforms/streamed.py`` ``import_gc``,
``transforms/write.py``): a list of 50,000 dicts converts about 1.5x slower, since it no longer sits
in the CPU's caches. It builds its rows as a plain script does, as dicts (with the pipeline's dict-row
builders, ``to_row`` and ``step_label_rows``); the pipeline builds Arrow columns straight from the
records instead (``to_columns``, ``step_label_columns``), which ``--sorted`` does too. What it does not do, and
the pipeline does: shard and sort the rows by id (an external sort through part files), drop
duplicate ids, check every record for dead letters, account for every byte and line read.

    python bench/bare_loop.py DATA LABELER PROVENANCE_JSON OUT [SPLIT SPLITS] [--sorted N]

writes OUT-problems.parquet, OUT-trajectories.parquet and OUT-steps.parquet (OUT-shareK-... for a
share: records i with (i - 1) % SPLITS == SPLIT, as the pipeline splits a file among workers); with
``--sorted N``, the pipeline's N shards of each table under OUT/ instead, sorted and deduplicated in
memory (``SortedTables``).
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prmflow.core.segment import SegmentConfig, segment
from prmflow.core.trajectories import from_segmentation, step_label_columns, step_label_rows, with_outcome
from prmflow.ids import content_id
from prmflow.labelers.outcome import make_outcome_labeler
from prmflow.schemas import TABLES, Problem, Trajectory, to_columns, to_row

WRITTEN = ("problems", "trajectories", "steps")  # what the pipeline writes for these inputs
BATCH = 64
ARROW_ROWS, WRITE_ROWS = 5_000, 50_000
TABLE_ROWS = 1_000  # --sorted: graded records built into Arrow columns this many at a time, as the pipeline
SEGMENT = SegmentConfig()


def problem_of(line: bytes, data: str, index: int) -> tuple[Problem, str]:
    """(the row's problem, its solution text)."""
    obj = json.loads(line)
    problem = Problem(problem_id=content_id("synthetic", obj["q"]), source="synthetic", domain="general",
                      prompt=obj["q"], reference_answer=obj["ans"], source_file=data, source_index=index,
                      metadata={"id": obj["id"]}, source_id=str(obj["id"]))
    return problem, obj["sol"]


def trajectory_of(problem: Problem, solution: str) -> Trajectory:
    return from_segmentation(problem, segment(solution, SEGMENT), origin="imported", max_steps=512)


def graded(labeler, batch: list[tuple[Problem, Trajectory]]) -> list[tuple[Problem, Trajectory]]:
    solutions = [(t.text, p.reference_answer) for p, t in batch]
    label_many = getattr(labeler, "label_many", None)
    outcomes = label_many(solutions) if label_many else [labeler.label(*s) for s in solutions]
    return [(p, with_outcome(t, o)) for (p, t), o in zip(batch, outcomes, strict=True)]


def rows_of(problem: Problem, trajectory: Trajectory, provenance: dict) -> tuple[dict, dict, list[dict]]:
    """The problem, trajectory and step rows (the pipeline's row builder for the steps)."""
    return to_row(problem), to_row(trajectory), step_label_rows(trajectory, provenance)


def tables_of(items: list[tuple[Problem, Trajectory]], provenance: dict) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The same rows as ``rows_of``, as Arrow tables built a column at a time (the pipeline's
    ``to_columns`` and ``step_label_columns``)."""
    trajectories = [t for _, t in items]
    columns = to_columns(trajectories, Trajectory)
    steps, _ = step_label_columns(trajectories, provenance, columns)
    return tuple(pa.Table.from_arrays(c, schema=TABLES[t][1]) for t, c in
                 zip(WRITTEN, (to_columns([p for p, _ in items], Problem), columns, steps), strict=True))


class Tables:
    """Rows -> Arrow every ARROW_ROWS -> one Parquet file per table, written every WRITE_ROWS."""

    def __init__(self, out: str) -> None:
        self.rows = {t: [] for t in WRITTEN}
        self.arrow = {t: [] for t in WRITTEN}
        self.writers = self.open(out)

    def open(self, out: str) -> dict:
        return {t: pq.ParquetWriter(f"{out}-{t}.parquet", TABLES[t][1], compression="zstd") for t in WRITTEN}

    def add(self, problem_row: dict, trajectory_row: dict, step_rows: list[dict]) -> None:
        self.rows["problems"].append(problem_row)
        self.rows["trajectories"].append(trajectory_row)
        self.rows["steps"].extend(step_rows)

    def add_tables(self, tables: tuple[pa.Table, ...]) -> None:
        for table, rows in zip(WRITTEN, tables, strict=True):
            self.arrow[table].append(rows)

    def spill(self, force: bool = False) -> None:
        for table in WRITTEN:
            rows, arrow = self.rows[table], self.arrow[table]
            if rows and (force or len(rows) >= ARROW_ROWS):
                arrow.append(pa.Table.from_pylist(rows, schema=TABLES[table][1]))
                rows.clear()
            if self.writers and arrow and (force or sum(t.num_rows for t in arrow) >= WRITE_ROWS):
                self.writers[table].write_table(pa.concat_tables(arrow))
                arrow.clear()

    def close(self) -> None:
        self.spill(force=True)
        for writer in self.writers.values():
            writer.close()


class SortedTables(Tables):
    """The pipeline's deliverable built in memory (``--sorted N``), its rows built as the pipeline
    builds them (Arrow columns, TABLE_ROWS records at a time: ``tables_of``): each table sorted by its order
    (``pipelines.label.ORDERS``; a stable sort, so equal keys keep their read order), one row per id
    (the first read), rows to shard ``int(id, 16) % N``, written with the shards' Parquet options in
    row groups of the same size. The pipeline sorts through part files instead, so that its memory
    does not grow with the input; this holds every row until the end."""

    def __init__(self, out: str, num_shards: int) -> None:
        self.out, self.num_shards = out, num_shards
        super().__init__(out)

    def open(self, out: str) -> dict:
        return {}  # no file until close(): spill() only converts rows to Arrow

    def close(self) -> None:
        import pyarrow.compute as pc

        from prmflow.pipelines.label import ORDERS
        from prmflow.transforms.write import (
            ROW_GROUP_ROWS,
            first_per_id,
            parquet_options,
            shard_numbers,
            shard_path,
        )

        self.spill(force=True)
        for table in WRITTEN:
            schema, order = TABLES[table][1], ORDERS[table]
            rows = pa.concat_tables(self.arrow.pop(table)) if self.arrow[table] else schema.empty_table()
            keys = [(order.column, "ascending"), *((c, "ascending") for c in order.then)]
            rows = first_per_id(rows.take(pc.sort_indices(rows, sort_keys=keys)), order.key)[0]
            shards = shard_numbers(rows[order.column], self.num_shards)
            for shard in range(self.num_shards):
                mine = rows.filter(pa.array(shards == shard)) if len(rows) else rows
                path = shard_path(self.out, table, shard, self.num_shards)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with pq.ParquetWriter(path, schema, **parquet_options(schema)) as writer:
                    for start in range(0, mine.num_rows, ROW_GROUP_ROWS):
                        writer.write_table(mine.slice(start, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                    if not mine.num_rows:
                        writer.write_table(schema.empty_table())
            del rows, shards


def main(argv: list[str]) -> None:
    argv = list(argv)
    num_shards = None
    if "--sorted" in argv:  # the pipeline's sorted, deduplicated shards, in OUT/<table>/
        at = argv.index("--sorted")
        num_shards = int(argv[at + 1])
        del argv[at:at + 2]
    data, labeler_name, provenance, out = argv[:4]
    provenance = json.loads(provenance)  # the pipeline's (run_provenance), so the step rows are the same
    split, splits = (int(a) for a in argv[4:6]) if len(argv) > 4 else (0, 1)
    out = out if splits == 1 else f"{out}-share{split}"
    labeler = make_outcome_labeler(labeler_name)
    tables, batch = (Tables(out) if num_shards is None else SortedTables(out, num_shards)), []
    saved = gc.get_threshold()
    gc.set_threshold(20000, saved[1], 1 << 30)  # as import_gc

    done: list = []  # --sorted: graded, waiting to become tables

    def flush(last: bool = False) -> None:
        if num_shards is None:
            for p, t in graded(labeler, batch):
                tables.add(*rows_of(p, t, provenance))
        else:
            done.extend(graded(labeler, batch))
            if done and (last or len(done) >= TABLE_ROWS):
                tables.add_tables(tables_of(done, provenance))
                done.clear()
        batch.clear()
        tables.spill()

    with open(data, "rb") as f:
        for i, line in enumerate(f, 1):
            if (i - 1) % splits != split:  # a share of the records, as the pipeline splits them
                continue
            problem, solution = problem_of(line, data, i)
            batch.append((problem, trajectory_of(problem, solution)))
            if len(batch) == BATCH:
                flush()
    flush(last=True)
    tables.close()
    labeler.close()
    gc.set_threshold(*saved)  # bench/breakdown.py calls this in its own process


if __name__ == "__main__":
    main(sys.argv[1:])
