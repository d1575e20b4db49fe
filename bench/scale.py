"""Import + grading at scale: the pipeline vs bare Python doing the same work, side by side in one run.

For each size, synthetic trajectories (generic JSONL: a question, a 5-line solution, a reference
answer; half of the answers wrong) go through

- ``bare`` (``bench/bare_loop.py``): one Python process reads the file, parses each row, segments
  the solution into steps, grades it with the same outcome labeler, builds the same problem,
  trajectory and step rows and writes the three tables with pyarrow, as the pipeline does (before 2026-11-30 it wrote the step
  rows only, which made the ratio compare unequal work). It also builds Arrow tables and collects
  garbage as the pipeline does: every 5,000 rows, not 50,000, and no full collections. Until the
  second session of 2026-11-30 it did neither, and spent up to a quarter more CPU than it needed,
  which flattered the ratio. Before the timed runs, its three tables on the first 2,000 records are
  checked against the pipeline's shards, row for row (``check_same_rows``); until the third session
  of 2026-11-30 its problem rows lacked the source's id (``metadata``) and its step rows carried a
  shorter provenance, so it did a little less work than the pipeline. It builds its rows as dicts,
  as a plain script does; since 2026-12-01 the pipeline's import builds Arrow columns straight from
  the records instead (``to_columns``, ``step_label_columns``), which is cheaper;
- ``sorted``: the bare loop delivering what the pipeline delivers (``bench/bare_loop.py --sorted``),
  its rows built with the pipeline's columnar builders: every table sorted (steps by trajectory, then
  step), one row per id, in the same shards, written the same way; checked byte for byte against the
  pipeline's shards on the first 2,000 records. It
  sorts in memory, holding every row to the end, where the pipeline sorts through part files so
  that its memory stays flat; it also imports Beam (the shard writer's module), about a second;
- ``pipeline 1w`` / ``pipeline 2w``: ``prmflow run`` on FnApiRunner with 1 worker, and with 2 worker
  processes (``--direct_num_workers=2 --direct_running_mode=multi_processing``; the input file is
  then read in 2 shares, one per worker);
- ``nobeam``: the pipeline's import DoFn and shard merges called in one process with no runner
  (what the pipeline does beyond the bare loop, without Beam's own cost: ``1w`` vs ``nobeam``);
- ``2bare``: two bare processes side by side, each on one share (records i mod 2, as the pipeline
  splits them): what any two-process split gains on this machine at the time, the yardstick for
  ``2w``;

each with the ``exact`` and the ``math`` labeler. The modes run interleaved, ``--repeat`` times
(bare, 1w, 2w, bare, 1w, 2w, ...), so that a slow spell of this shared machine falls on every mode
alike; each figure is the median of its repeats. Printed per mode: wall seconds, step rows/s, CPU
seconds (user + system of the process tree), peak RSS of the whole process tree (sampled from /proc
every 0.1 s), and the ratios pipeline/bare (of throughput, and of CPU time: bare CPU / pipeline
CPU, which a noisy neighbour disturbs less than wall time), pipeline/``sorted`` throughput ("vs
sorted": the pipeline against plain Python making the same shards) and "2 vs 1": 2 workers/1 worker for
``2w``, two bare processes/one for ``2bare``. Goals (issue 13): pipeline/bare throughput >= 0.9;
2 workers >= 1.6x one at 200k trajectories; peak RSS at 1M within 1.5x of the peak at 50k.

    python bench/scale.py [--sizes 20000] [--labelers exact,math] [--modes bare,sorted,nobeam,1w,2w,2bare] [--repeat 3]
    python bench/scale.py --sizes 50000,200000,1000000 --repeat 1    # the issue's sizes (long)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STEPS = 5
SHARDS = 4
PIPELINE_MODES = ("nobeam", "1w", "2w")


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
            total = (a + b) * c
            stated = total if i % 2 == 0 else total + rng.randint(1, 9)
            lines = [f"First, {a} + {b} = {a + b}.", f"Then {a + b} times {c} is {(a + b) * c}.",
                     "Check the units: all counts are whole items.", f"So the total is ${stated}.",
                     f"The answer is {stated}."]
            f.write(json.dumps({"id": f"t{i}", "q": f"Problem {i}: ({a} + {b}) * {c}?", "sol": "\n".join(lines),
                                "ans": str(total)}) + "\n")


def config(data: Path, labeler: str) -> dict:
    return {
        "name": f"scale-{labeler}",
        "inputs": [{"name": "synthetic", "format": "jsonl", "path": str(data),
                    "fields": {"prompt": "q", "solution": "sol", "reference_answer": "ans", "id": "id"}}],
        "segment": {"strategy": "lines"},
        "outcome": {"labeler": labeler},
        "output": {"num_shards": SHARDS},
    }


BARE = str(REPO / "bench" / "bare_loop.py")  # run as a script: python bench/bare_loop.py ...


# The pipeline's own work without Beam's: the import DoFn (ImportShare) and the shard merges,
# called in one process as the runner would call them, with no runner. Its gap to ``bare`` is what
# the pipeline does beyond the bare loop (sharding by id, sorting and dedupe through part files,
# dead-letter checks, byte accounting); its gap to ``1w`` is Beam's own (start-up, the runner).
NOBEAM = textwrap.dedent("""
    import sys
    from prmflow.config import load_config
    from prmflow.pipelines.label import ORDERS, _merge, run_provenance
    from prmflow.schemas import TABLES
    from prmflow.transforms.streamed import ImportShare
    config_path, out = sys.argv[1:3]
    config = load_config(config_path)
    spec, n = config.inputs[0], config.output.num_shards
    fn = ImportShare(spec, config.limits, config.segment, config.outcome, run_provenance(config), out, n,
                     ORDERS)
    fn.setup()
    fn.start_bundle()
    parts = [x for x in fn.process((spec.path, 0, 1)) if isinstance(x, dict)]
    parts += [w.value for w in fn.finish_bundle()]
    fn.teardown()
    for table in TABLES:
        for shard in range(n):
            _merge((table, shard), out, n, parts)
""")


# Two bare processes side by side, each on one half (records i mod 2): the most any two-process
# split can gain on this machine, measured beside the pipeline's 2 workers.
SIDE_BY_SIDE = textwrap.dedent("""
    import subprocess, sys
    script, *args = sys.argv[1:]
    procs = [subprocess.Popen([sys.executable, script, *args, str(i), "2"]) for i in range(2)]
    sys.exit(max(p.wait() for p in procs))
""")


def check_same_rows(tmp_path: Path, data: Path, labeler: str, n: int = 2000) -> None:
    """The bare loops must do the pipeline's work: on the first ``n`` records of ``data``, the bare
    loop's three tables hold the same rows as the pipeline's shards (compared sorted by id), and the
    sorted bare loop writes the same shard files, byte for byte; exits if not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prmflow.config import load_config
    from prmflow.pipelines.label import ID_COLUMNS

    head = tmp_path / f"check-{labeler}.jsonl"
    with data.open() as src, head.open("w") as dst:
        dst.writelines(line for _, line in zip(range(n), src, strict=False))
    cfg = tmp_path / f"check-{labeler}.yaml"
    cfg.write_text(yaml.safe_dump(config(head, labeler)))
    out_bare, out_pipeline = tmp_path / f"check-{labeler}-bare", tmp_path / f"check-{labeler}-pipeline"
    measured([sys.executable, BARE, str(head), labeler, provenance_of(cfg), str(out_bare)])
    measured([sys.executable, "-m", "prmflow", "run", str(cfg), "--output", str(out_pipeline)])
    out_sorted = tmp_path / f"check-{labeler}-sorted"
    measured([sys.executable, BARE, str(head), labeler, provenance_of(cfg), str(out_sorted), "--sorted", str(SHARDS)])
    for table in ("problems", "trajectories", "steps"):
        for shard in sorted((out_pipeline / table).glob("*.parquet")):
            if (out_sorted / table / shard.name).read_bytes() != shard.read_bytes():
                raise SystemExit(f"bench/scale.py: the sorted bare loop's {table}/{shard.name} differs from the "
                                 f"pipeline's ({load_config(cfg).name}, first {n} records)")
        key = [(ID_COLUMNS[table], "ascending")]
        bare = pq.read_table(f"{out_bare}-{table}.parquet").sort_by(key)
        shards = sorted((out_pipeline / table).glob("*.parquet"))
        pipeline = pa.concat_tables([pq.read_table(s) for s in shards]).sort_by(key)
        if not bare.equals(pipeline):
            raise SystemExit(f"bench/scale.py: the bare loop's {table} rows differ from the pipeline's "
                             f"({load_config(cfg).name}, first {n} records): it does not do the same work")
    shutil.rmtree(out_pipeline)
    shutil.rmtree(out_sorted)


def provenance_of(cfg: Path) -> str:
    """The provenance JSON the pipeline puts in every step row of a run of ``cfg``, for the bare loop."""
    from prmflow.config import load_config
    from prmflow.pipelines.label import run_provenance

    return json.dumps(run_provenance(load_config(cfg)))


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree_version() -> str:
    """The commit the measured code is, ``-dirty`` when the tree has uncommitted changes: every run
    imports prmflow from this tree, so an edit made while a benchmark runs is measured too."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS of the process tree, CPU seconds of the tree) of a command that must
    succeed. CPU counts the processes the command waited for (Beam's worker processes included)."""
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()[-3000:]}")
    return seconds, peak, children_cpu() - cpu


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000", help="comma-separated trajectory counts")
    ap.add_argument("--labelers", default="exact,math")
    ap.add_argument("--modes", default="bare,sorted,nobeam,1w,2w,2bare")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per mode; figures are medians")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    labelers = args.labelers.split(",")
    modes = args.modes.split(",")
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"{STEPS} steps per trajectory; median of {args.repeat} interleaved runs per mode; tree {tree_version()}")
    print(f"{'trajectories':>12} {'labeler':>7} {'mode':>6} {'seconds':>9} {'step rows/s':>12} {'CPU s':>8}"
          f" {'peak RSS MB':>12} {'vs bare':>8} {'CPU vs bare':>12} {'vs sorted':>10} {'2 vs 1':>7}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for n in sizes:
            data = tmp_path / f"synthetic-{n}.jsonl"
            write_corpus(data, n)
            for labeler in labelers:
                cfg = tmp_path / f"{labeler}-{n}.yaml"
                cfg.write_text(yaml.safe_dump(config(data, labeler)))
                check_same_rows(tmp_path, data, labeler)
                provenance = provenance_of(cfg)
                runs: dict[str, list[tuple[float, int, float]]] = {m: [] for m in modes}
                for _ in range(args.repeat):
                    for mode in modes:
                        out = tmp_path / f"out-{labeler}-{n}-{mode}"
                        if mode == "bare":
                            cmd = [sys.executable, BARE, str(data), labeler, provenance, str(out)]
                        elif mode == "sorted":
                            cmd = [sys.executable, BARE, str(data), labeler, provenance, str(out), "--sorted", str(SHARDS)]
                        elif mode == "2bare":
                            cmd = [sys.executable, "-c", SIDE_BY_SIDE, BARE, str(data), labeler, provenance, str(out)]
                        elif mode == "nobeam":
                            cmd = [sys.executable, "-c", NOBEAM, str(cfg), str(out)]
                        else:
                            cmd = [sys.executable, "-m", "prmflow", "run", str(cfg), "--output", str(out)]
                            if mode == "2w":
                                cmd += ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
                        runs[mode].append(measured(cmd))
                        for leftover in tmp_path.glob(out.name + "*"):  # outputs of 1M rows add up
                            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                row: dict[str, dict] = {}
                for mode in modes:
                    seconds = statistics.median(r[0] for r in runs[mode])
                    peak = max(r[1] for r in runs[mode])
                    cpu = statistics.median(r[2] for r in runs[mode])
                    rate = n * STEPS / seconds
                    row[mode] = {"size": n, "labeler": labeler, "mode": mode, "seconds": seconds,
                                 "rows_per_s": rate, "cpu_seconds": cpu, "peak_rss_mb": peak / 2**20,
                                 "runs": [r[0] for r in runs[mode]]}
                    vs_bare = cpu_vs_bare = vs_sorted = "-"
                    if "sorted" in row and mode in PIPELINE_MODES:
                        vs_sorted = f"{rate / row['sorted']['rows_per_s']:.2f}"
                    if "bare" in row and mode not in ("bare", "2bare"):
                        vs_bare = f"{rate / row['bare']['rows_per_s']:.2f}"
                        cpu_vs_bare = f"{row['bare']['cpu_seconds'] / cpu:.2f}"
                    one = {"2w": "1w", "2bare": "bare"}.get(mode)  # the 2-process mode against its 1-process one
                    vs_1w = f"{rate / row[one]['rows_per_s']:.2f}" if one in row else "-"
                    print(f"{n:>12} {labeler:>7} {mode:>6} {seconds:>9.1f} {rate:>12.0f} {cpu:>8.1f}"
                          f" {peak / 2**20:>12.0f} {vs_bare:>8} {cpu_vs_bare:>12} {vs_sorted:>10} {vs_1w:>7}", flush=True)
                results.extend(row.values())
    return results


if __name__ == "__main__":
    main()
