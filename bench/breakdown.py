"""Where an import's time goes beyond the bare loop: each stage of the pipeline's import against the
bare loop's (``bench/bare_loop.py``), in one process, on the same records.

``bench/scale.py`` measures whole runs side by side; this splits the difference between them. For
each stage, the pipeline's functions (the ones ``transforms/streamed.py`` ``ImportShare`` calls) and
the bare loop's run on the first N synthetic records, alternating, and each figure is the least of
``--repeat`` CPU times (this VM's noise only ever adds time; medians moved by 30% between runs):

- read: ``share_items`` (byte and line accounting, record size limits, UTF-8 checks) vs iterating
  the file's lines;
- parse: ``parse_one`` (the generic field mapping with typed fields, dead letters, source metadata)
  vs ``json.loads`` and a Problem;
- segment: ``segment_one`` and ``with_gold`` vs segmenting into a Trajectory;
- grade: ``label_batch`` vs the same labeler and ``with_outcome``, 64 at a time;
- rows: the problem, trajectory and step rows with their read-order keys, built as Arrow columns
  TABLE_ROWS records at a time (``problem_table``, ``graded_tables``), vs the same rows as dicts
  (the pipeline's dict-row builders: ``to_row``, ``step_label_rows``);
- write: ``PartWriter`` and the shard merges (sharding, sorting by id through part files, dedupe)
  vs the dicts to Arrow every 5,000 rows and one Parquet file per table;
- whole: ``ImportShare`` and the merges vs the bare loop's ``main``, both in this process; what the
  whole has beyond the sum of its stages is the loop's own work (tallies, counters, batching).

    python bench/breakdown.py [--records 20000] [--labeler exact] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bare_loop  # noqa: E402
import scale  # noqa: E402

from prmflow.config import load_config  # noqa: E402
from prmflow.pipelines.label import ORDERS, _merge, run_provenance  # noqa: E402
from prmflow.schemas import TABLES  # noqa: E402
from prmflow.sources import FileCount  # noqa: E402
from prmflow.transforms.dead_letters import BundleCounts  # noqa: E402
from prmflow.transforms.label import (  # noqa: E402
    graded_tables,
    label_batch,
    problem_table,
    segment_one,
    with_gold,
)
from prmflow.transforms.read import parse_one, share_items  # noqa: E402
from prmflow.transforms.streamed import TABLE_ROWS, ImportShare, import_gc  # noqa: E402
from prmflow.transforms.write import PartWriter  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    start = cpu()
    out = fn()
    return cpu() - start, out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--labeler", default="exact")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="prmflow-breakdown-"))
    try:
        return run(tmp, args.records, args.labeler, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, n: int, labeler_name: str, repeat: int) -> list[dict]:
    data = tmp / "synthetic.jsonl"
    scale.write_corpus(data, n)
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(scale.config(data, labeler_name)))
    config = load_config(cfg_path)
    spec, limits, provenance, shards = config.inputs[0], config.limits, run_provenance(config), config.output.num_shards
    labeler = config.outcome.make_labeler()
    counts = BundleCounts()

    # the stages, each a (pipeline, bare) pair of functions of the previous stage's outputs
    def read():
        return [r for r in share_items(spec, limits, str(data), 0, 1) if not isinstance(r, FileCount)]

    def bare_read():
        with open(data, "rb") as f:
            return list(enumerate(f, 1))

    def write(rows):
        out = tmp / "pipeline"
        writers = {t: PartWriter(str(out), t, TABLES[t][1], ORDERS[t], shards) for t in rows}
        parts = [p for t, tables in rows.items() for table in tables for p in writers[t].add_table(table)]
        parts += [p for w in writers.values() for p in w.close()]
        for table in rows:
            for shard in range(shards):
                _merge((table, shard), str(out), shards, parts)
        shutil.rmtree(out)

    def bare_write(rows):
        tables = bare_loop.Tables(str(tmp / "bare"))
        for i in range(0, len(rows["problems"]), bare_loop.BATCH):
            for table in bare_loop.WRITTEN:
                per = 5 if table == "steps" else 1  # the synthetic solutions have 5 steps
                tables.rows[table].extend(rows[table][i * per:(i + bare_loop.BATCH) * per])
            tables.spill()
        tables.close()

    def whole():
        out = tmp / "whole"
        fn = ImportShare(spec, limits, config.segment, config.outcome, provenance, str(out), shards, ORDERS)
        fn.setup()
        fn.start_bundle()
        parts = [x for x in fn.process((str(data), 0, 1)) if isinstance(x, dict)]
        parts += [w.value for w in fn.finish_bundle()]
        fn.teardown()
        for table in TABLES:
            for shard in range(shards):
                _merge((table, shard), str(out), shards, parts)
        shutil.rmtree(out)

    def bare_whole():
        bare_loop.main([str(data), labeler_name, json.dumps(provenance), str(tmp / "bare-whole")])

    times: dict[str, dict[str, list[float]]] = {}

    def stage(name, pipeline_fn, bare_fn, pipeline_in=None, bare_in=None):
        """Time ``pipeline_fn(pipeline_in)`` and ``bare_fn(bare_in)``; return both outputs."""
        p_time, p_out = timed(lambda: pipeline_fn(pipeline_in))
        b_time, b_out = timed(lambda: bare_fn(bare_in))
        times.setdefault(name, {"pipeline": [], "bare": []})
        times[name]["pipeline"].append(p_time)
        times[name]["bare"].append(b_time)
        return p_out, b_out

    batch = bare_loop.BATCH

    def parse(raws):
        return [parse_one(r, spec, counts) for r in raws]

    def bare_parse(lines):
        return [bare_loop.problem_of(line, str(data), i) for i, line in lines]

    def segment(parsed):
        return [with_gold(o, counts) for p in parsed for o in segment_one(p, config.segment, limits.max_steps, counts)]

    def bare_segment(problems):
        return [(p, bare_loop.trajectory_of(p, s)) for p, s in problems]

    def grade(items):
        return [x for i in range(0, len(items), batch)
                for x in label_batch(labeler, config.outcome.labeler, items[i:i + batch], counts)]

    def bare_grade(items):
        return [x for i in range(0, len(items), batch) for x in bare_loop.graded(labeler, items[i:i + batch])]

    def rows(items):
        chunks = [items[i:i + TABLE_ROWS] for i in range(0, len(items), TABLE_ROWS)]
        graded = [graded_tables(chunk, provenance) for chunk in chunks]
        return {"problems": [problem_table([p for p, _ in chunk]) for chunk in chunks],
                "trajectories": [t for t, _ in graded], "steps": [s for _, s in graded]}

    def bare_rows(items):
        built = [bare_loop.rows_of(p, t, provenance) for p, t in items]
        return {"problems": [b[0] for b in built], "trajectories": [b[1] for b in built],
                "steps": [r for b in built for r in b[2]]}

    for _ in range(repeat):
        with import_gc():
            out = stage("read", lambda _: read(), lambda _: bare_read())
            for name, fn, bare_fn in (("parse", parse, bare_parse), ("segment", segment, bare_segment),
                                      ("grade", grade, bare_grade), ("rows", rows, bare_rows),
                                      ("write", write, bare_write)):
                out = stage(name, fn, bare_fn, *out)
            del out
        stage("whole", lambda _: whole(), lambda _: bare_whole())
    labeler.close()

    med = {name: {k: min(v) for k, v in t.items()} for name, t in times.items()}
    stages = [s for s in med if s != "whole"]
    med["loop"] = {k: med["whole"][k] - sum(med[s][k] for s in stages) for k in ("pipeline", "bare")}
    gap = med["whole"]["pipeline"] - med["whole"]["bare"]
    print(f"# {n} synthetic records, labeler {labeler_name}, CPU seconds, least of {repeat}, one process")
    print(f"{'stage':>8} {'pipeline':>9} {'bare':>7} {'extra':>7} {'us/record':>10} {'of the gap':>11}")
    results = []
    for name in [*stages, "loop", "whole"]:
        p, b = med[name]["pipeline"], med[name]["bare"]
        share = f"{(p - b) / gap:.0%}" if gap > 0 and name != "whole" else "-"
        print(f"{name:>8} {p:>9.3f} {b:>7.3f} {p - b:>+7.3f} {(p - b) / n * 1e6:>+10.1f} {share:>11}")
        results.append({"stage": name, "pipeline_s": p, "bare_s": b})
    print(f"# whole: bare / pipeline = {med['whole']['bare'] / med['whole']['pipeline']:.2f}")
    return results


if __name__ == "__main__":
    main()
