"""The labeling pipeline: read -> segment -> outcome label -> step rows -> Parquet shards + manifest.

``build(pipeline, config, out_dir)`` wires the graph; ``run(argv)`` is the entry point behind
``prmflow run CONFIG [--output DIR] [beam options]``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from prmflow.config import ConfigError, RunConfig, load_config
from prmflow.pipelines.common import (
    Tally,
    all_dead_lines,
    beam_options,
    complete_run,
    finalize,
    format_summary,
    publishing,
)
from prmflow.pipelines.output import NotPublished, resolve
from prmflow.samplers.shared import reset_caches
from prmflow.schemas import TABLES, to_row
from prmflow.sources import normalise_prompt
from prmflow.transforms.cache import CACHE_DIR, delete_cache, open_cache, stage_cache
from prmflow.transforms.dead_letters import DEAD, NAMESPACE
from prmflow.transforms.dedupe import DedupeTrajectories
from prmflow.transforms.label import (
    AttachGold,
    LabelOutcomes,
    SegmentDrafts,
    join_reference,
    problem_row,
    step_rows,
    trajectory_row,
)
from prmflow.transforms.read import ReadInput, excluding
from prmflow.transforms.weights import ConsistencyWeights
from prmflow.transforms.write import RowOrder, WriteParts, merge_shard

log = logging.getLogger("prmflow")

ID_COLUMNS = {
    "problems": "problem_id", "trajectories": "trajectory_id", "steps": "step_id",
    "start_states": "start_state_id", "rollouts": "rollout_id", "dead_letters": "dead_letter_id",
}
# How each table is sharded and sorted (transforms/write.py RowOrder): by its id, except steps, which
# go with their trajectory, in step order. Sorted by a hashed step id, a trajectory's steps were
# scattered over its shard: the steps shards compressed to about 1.75x their size in this order, and
# reading one trajectory's steps meant reading the whole shard.
ORDERS = {table: RowOrder(column) for table, column in ID_COLUMNS.items()} | {
    "steps": RowOrder("trajectory_id", ("step_index",), unique="step_id"),
}


def _first_by_index(problems):
    """The same problem read twice (ProcessBench: one row per generator) is kept once, the earliest."""
    return min(problems, key=lambda p: (p.source_file or "", p.source_index or 0))


def _read_counted(p, spec, config: RunConfig, dead_all: list, tallies: list, splits: int = 1):
    """One input read, its rows counted as read / parsed / dead-lettered, its dead letters kept."""
    name = spec.source_name
    reader = ReadInput(spec, config.limits, splits)
    raws, parsed, dead = p | reader
    tallies.append(reader.tallies)  # rows and bytes counted beside the splitter, for reconcile()
    tallies.append(raws | f"CountRead[{name}]" >> Tally("records_read", lambda r, n=name: n))
    tallies.append(parsed | f"CountParsed[{name}]" >> Tally("records_parsed", lambda r, n=name: n))
    tallies.append(dead | f"CountDead[{name}]" >> Tally("records_dead", lambda r, n=name: n))
    dead_all.append(dead)
    return parsed


def references(p, spec, config: RunConfig, dead_all: list, tallies: list):
    """The reference answers of input ``spec`` (its ``references`` input, read and counted like any
    input) as an AsDict side input: normalised problem text -> answer."""
    name = spec.source_name
    refs = (
        _read_counted(p, spec.reference_input(), config, dead_all, tallies)
        | f"KeyReferences[{name}]" >> beam.Map(lambda x: (normalise_prompt(x.problem.prompt), x.problem.reference_answer))
        | f"KeepAnswered[{name}]" >> beam.Filter(lambda kv: kv[1] is not None)
    )
    return beam.pvalue.AsDict(refs)


def read_inputs(p, config: RunConfig, splits: int = 1):
    """All inputs -> (parsed records, dead letters, tallies); each file read in ``splits`` shares."""
    parsed_all, dead_all, tallies = [], [], []
    for spec in config.inputs:
        name = spec.source_name
        parsed = _read_counted(p, spec, config, dead_all, tallies, splits)
        if spec.references:
            parsed = parsed | f"JoinReferences[{name}]" >> beam.Map(
                join_reference, references(p, spec, config, dead_all, tallies))
        parsed_all.append(parsed)
    parsed = parsed_all | "FlattenInputs" >> beam.Flatten()
    return parsed, dead_all, tallies


def sample(config: RunConfig, problems, dead_all: list, tallies: list, cache_root: str | None):
    """The policy's trajectories for every problem, when the config has a ``sampler`` section."""
    from prmflow.transforms.sample import SampleTrajectories  # engine stages import torch: only when used

    requests, items, dead, engine = problems | "SampleTrajectories" >> SampleTrajectories(
        config.sampler, config.sampling, config.seed, config.segment, config.limits.max_steps,
        stage_cache(cache_root, "sample", config.sampler),
    )
    dead_all.append(dead)
    tallies.append(requests | "CountRequests" >> Tally("sample_requests", lambda pr: pr[0].source))
    tallies.append(engine | "CountSamplingEngine" >> Tally("engine", lambda kv: kv[0], lambda kv: kv[1]))
    return items


def label_steps(config: RunConfig, labeled, provenance: dict, dead_all: list, tallies: list,
                cache_root: str | None) -> dict:
    """Step labels from rollouts (a ``process`` section) -> the steps, start_states, rollouts tables."""
    from prmflow.transforms.rollout import LabelSteps

    cache = stage_cache(cache_root, "rollout", config.sampler, config.sampling, config.process, config.outcome,
                        config.seed, sorted(provenance.items()))
    steps, start_states, rollouts, dead, engine = labeled | "LabelSteps" >> LabelSteps(
        config.sampler, config.sampling, config.process, config.outcome, config.seed, provenance, cache
    )
    dead_all.append(dead)
    tallies.append(engine | "CountRolloutEngine" >> Tally("engine", lambda kv: kv[0], lambda kv: kv[1]))
    tallies.append(start_states | "CountStateRollouts" >> Tally(
        "start_state_rollouts", lambda r: r["source"], lambda r: r["rollouts"] or 0))
    tallies.append(start_states | "CountStepStateRollouts" >> Tally(
        "step_state_rollouts", lambda r: r["source"], lambda r: (r["rollouts"] or 0) if r["step_index"] is not None else 0))
    return {"steps": steps, "start_states": start_states, "rollouts": rollouts}


def judge(config: RunConfig, labeled, dead_all: list, tallies: list, cache_root: str | None):
    """The judge's verdicts on every trajectory (a ``judge`` section); each comes out once, judged or not."""
    from prmflow.transforms.judge import JudgeTrajectories

    tallies.append(labeled | "CountJudgeIn" >> Tally("judge_in", lambda it: it[1].source))
    judged, dead, engine, requests = labeled | "JudgeTrajectories" >> JudgeTrajectories(
        config.judge, config.seed, stage_cache(cache_root, "judge", config.judge.sampler))
    dead_all.append(dead)
    tallies.append(requests | "CountJudgeRequests" >> Tally("judge_requests", lambda r: r[0][1].source))
    tallies.append(engine | "CountJudgeEngine" >> Tally("engine", lambda kv: kv[0], lambda kv: kv[1]))
    tallies.append(judged | "CountJudged" >> Tally(
        "judged", lambda it: it[1].source, lambda it: 1 if it[1].judge_votes is not None else 0))
    return judged


def streams(config: RunConfig) -> bool:
    """An import-and-grade run (no engine stage, nothing that groups rows) streams: no stage groups
    or holds whole tables, duplicates are dropped where the shards are merged, and memory does not
    grow with the input. Runs with engine stages dedupe problems and trajectories before them, so a
    duplicate is never sampled, rolled out or judged twice."""
    return not (config.samples_trajectories or config.process is not None or config.judge is not None
                or config.prm is not None or config.consistency is not None or config.segment.strategy == "model")


def import_streamed(p, config: RunConfig, out_dir: str, splits: int, provenance: dict,
                    dead_all: list, tallies: list) -> list:
    """An import-and-grade run: each share of each input goes from raw records to part files in one
    DoFn (``transforms/streamed.py``), which does per record what the stages below do, with the
    same functions. Returns the part-stats PCollections."""
    from prmflow.transforms.read import expand_path
    from prmflow.transforms.streamed import TALLIES, ImportShare

    parts = []
    for spec in config.inputs:
        name = spec.source_name
        side = [references(p, spec, config, dead_all, tallies)] if spec.references else []
        if spec.format == "arith":
            shares = [(spec.count, spec.seed)]
        else:
            shares = [(path, i, splits) for path in expand_path(spec.path) for i in range(splits)]
        written, tallied = (
            p
            | f"Shares[{name}]" >> beam.Create(shares)
            | f"Import[{name}]" >> beam.ParDo(ImportShare(
                spec, config.limits, config.segment, config.outcome, provenance,
                out_dir, config.output.num_shards, ORDERS), *side).with_outputs(TALLIES, main="parts")
        )
        parts.append(written)
        tallies.append(tallied)
    return parts


def run_provenance(config: RunConfig) -> dict:
    """What every step row of a run records of how it was labeled (the ``provenance`` column)."""
    return {"config": config.digest(), "outcome": config.outcome.labeler, "segment": config.segment.strategy}


def build(p, config: RunConfig, out_dir: str, cache_root: str | None = None, read_splits: int | None = None) -> None:
    """The whole pipeline, writing its tables under ``out_dir``; engine stages keep each finished
    batch under ``cache_root`` (the stage cache) and take it from there on a rerun. Each input file
    is read in ``read_splits`` shares (default: the local runner's worker processes)."""
    splits = read_splits or local_workers(p.options)
    provenance = run_provenance(config)
    if streams(config):  # duplicates are dropped where the shards are merged (first read kept)
        dead_all, tallies = [], []
        parts = import_streamed(p, config, out_dir, splits, provenance, dead_all, tallies)
        tables = {}  # dead letters of the import are in its parts; those of reading references:
        if dead_all:
            tables["dead_letters"] = dead_all | "FlattenDead" >> beam.Flatten() | "DeadRows" >> beam.Map(to_row)
        write(p, config, out_dir, tables, tallies, parts)
        return
    parsed, dead_all, tallies = read_inputs(p, config, splits)
    problem_objs = (
        parsed
        | "KeyProblems" >> beam.Map(lambda x: (x.problem.problem_id, x.problem))
        | "DedupeProblems" >> beam.CombinePerKey(_first_by_index)
        | "Problems" >> beam.Values()
    )
    problems = problem_objs | "ProblemRows" >> beam.Map(problem_row)
    items, seg_dead = parsed | "Segment" >> beam.ParDo(
        SegmentDrafts(config.segment, config.limits.max_steps)
    ).with_outputs(DEAD, main="items")
    dead_all.append(seg_dead)
    tallies.append(parsed | "CountSolutions" >> beam.FlatMap(lambda x: [x.problem.source] * len(x.drafts))
                   | Tally("solutions", lambda s: s))
    if config.samples_trajectories:
        sampled = sample(config, problem_objs, dead_all, tallies, cache_root)
        items = (items, sampled) | "AllTrajectories" >> beam.Flatten()
    items, duplicates = items | "DedupeTrajectories" >> DedupeTrajectories()  # one row per trajectory_id
    tallies.append(duplicates)
    if config.segment.strategy == "model":
        from prmflow.transforms.resplit import ModelSplit

        items, statuses = items | "ModelSplit" >> ModelSplit(
            config.segment, config.seed, config.limits.max_steps, stage_cache(cache_root, "split", config.segment))
        tallies.append(statuses | "CountModelSplit" >> Tally("model_split", lambda s: s))

    labeled = (
        items
        | "AttachGold" >> beam.ParDo(AttachGold())
        | "LabelOutcomes" >> LabelOutcomes(config.outcome)
    )
    if config.judge is not None:
        labeled = judge(config, labeled, dead_all, tallies, cache_root)
    if config.prm is not None:
        from prmflow.transforms.prm import ScoreSteps

        labeled = labeled | "ScoreSteps" >> ScoreSteps(config.prm, stage_cache(cache_root, "prm", config.prm))
    tables = {"problems": problems, "trajectories": labeled | "TrajectoryRows" >> beam.Map(trajectory_row)}
    if config.process is not None:
        tables.update(label_steps(config, labeled, provenance, dead_all, tallies, cache_root))
    else:
        tables["steps"] = labeled | "StepRows" >> beam.FlatMap(step_rows, provenance)
    if config.judge is not None and config.process is not None:
        from prmflow.transforms.judge import Consensus

        tables["trajectories"], tables["steps"] = (tables["trajectories"], tables["steps"]) | "Consensus" >> Consensus()
    if config.consistency is not None:
        tables["steps"] = tables["steps"] | "ConsistencyWeights" >> ConsistencyWeights(config.consistency)
    # rows per source, outcome status, dead-letter reason, ... are counted where the shards are
    # merged (table_tallies), from the rows as written
    tables["dead_letters"] = dead_all | "FlattenDead" >> beam.Flatten() | "DeadRows" >> beam.Map(to_row)
    write(p, config, out_dir, tables, tallies)


def _counts(table: pa.Table, column: str) -> list[tuple[object, int]]:
    if not table.num_rows:
        return []
    return [(v["values"], v["counts"]) for v in pc.value_counts(table[column]).to_pylist()]


def table_tallies(table: str, kept: pa.Table, dropped: pa.Table) -> list:
    """((metric, key), n) of one merged piece of ``table``, as the manifest counts them."""
    if table == "trajectories":
        return ([(("trajectories", k), n) for k, n in _counts(kept, "source")]
                + [(("outcome_status", k), n) for k, n in _counts(kept, "outcome_status")]
                + [(("duplicates", k), n) for k, n in _counts(dropped, "source")])
    if table == "steps" and kept.num_rows:
        sums = kept.group_by("source").aggregate([("mc_rollouts", "sum")]).to_pylist()
        return [(("mc_rollouts", r["source"]), r["mc_rollouts_sum"] or 0) for r in sums]
    if table == "dead_letters" and kept.num_rows:
        reasons = pc.binary_join_element_wise(kept["stage"], kept["reason"], "/")
        return ([(("dead_letters", k), n) for k, n in _counts(kept.append_column("_k", reasons), "_k")]
                + [(("dead_by_stage", k), n) for k, n in _counts(kept, "stage")]
                + [(("dead_letters_written", k), n) for k, n in _counts(kept, "source")])
    return []


DEDUPED = ("problems", "trajectories", "steps")  # one row per id; the others keep every row


def _merge(key: tuple[str, int], out_dir: str, num_shards: int, parts: list) -> dict:
    table, shard = key
    stats = merge_shard(out_dir, table, shard, num_shards, TABLES[table][1], ORDERS[table], parts,
                        lambda kept, dropped: table_tallies(table, kept, dropped), dedupe=table in DEDUPED)
    # the streamed import drops duplicate trajectories here, not in DedupeTrajectories: the same counter
    dropped = sum(n for (metric, _), n in stats["tallies"] if metric == "duplicates")
    if dropped:
        beam.metrics.Metrics.counter(NAMESPACE, "duplicates").inc(dropped)
    return stats


def write(p, config: RunConfig, out_dir: str, tables: dict, tallies: list, written: list = ()) -> None:
    """Each table's rows as part files (with the parts already ``written``), then each shard merged
    from its parts, then the manifest once every shard is written (``transforms/write.py``)."""
    n = config.output.num_shards
    parts = [*written] + [
        rows | f"WriteParts[{table}]" >> beam.ParDo(
            WriteParts(out_dir, table, TABLES[table][1], ORDERS[table], n))
        for table, rows in tables.items()
    ]
    all_parts = parts | "FlattenParts" >> beam.Flatten()
    shards = (
        p
        | "Shards" >> beam.Create([(table, s) for table in TABLES for s in range(n)])
        | "MergeShards" >> beam.Map(_merge, out_dir, n, beam.pvalue.AsList(all_parts))
    )
    all_tallies = tallies | "FlattenTallies" >> beam.Flatten()
    _ = (
        p
        | "Once" >> beam.Create([None])
        | "Finalize" >> beam.Map(
            finalize, out_dir, config.to_dict(),
            beam.pvalue.AsList(all_tallies), beam.pvalue.AsList(shards),
        )
    )


def local_workers(options) -> int:
    """Worker processes of a local (FnApiRunner/Direct) run, for splitting the input among them."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = str(options.view_as(StandardOptions).runner or "")
    if runner.split(".")[-1] not in ("FnApiRunner", "DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner"):
        return 1
    return max(1, options.view_as(DirectOptions).direct_num_workers or 1)


def parse_args(argv: list[str] | None):
    from prmflow.core.cliparse import parser
    from prmflow.pipelines.args import RUN_DESCRIPTION, RUN_EPILOG, add_run_arguments

    p = parser("prmflow run", RUN_DESCRIPTION, add_run_arguments, epilog=RUN_EPILOG)
    return p.parse_known_args(argv)


ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})
"""A full disk or quota, a read-only or failing filesystem: the run reports them in one line, so
Beam's traceback of them (``_LOGGER.exception`` in ``apache_beam.runners.common``) is not logged."""


class _NoEnvironmentTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS)


@contextlib.contextmanager
def _quiet_environment_errors():
    beam_log, quiet = logging.getLogger("apache_beam.runners.common"), _NoEnvironmentTracebacks()
    beam_log.addFilter(quiet)
    try:
        yield
    finally:
        beam_log.removeFilter(quiet)


def io_error(e: BaseException) -> OSError | None:
    """The OSError a Beam failure wraps (its ``__cause__``/``__context__`` chain), if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno is not None:
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def run(argv: list[str] | None = None) -> dict:
    """``prmflow run CONFIG [--output DIR] [beam options]``: build and run the pipeline; returns the
    manifest. Unrecognised arguments go to Beam."""
    args, beam_args = parse_args(argv)
    if args.read_splits is not None and args.read_splits < 1:
        raise ConfigError(f"--read-splits must be an integer >= 1, got {args.read_splits}")
    config = load_config(args.config)
    return run_config(config, args.output, beam_args, fresh=args.fresh, read_splits=args.read_splits)


def run_config(config: RunConfig, output: str | None = None, beam_args: list[str] | tuple = (), *,
               fresh: bool = False, read_splits: int | None = None) -> dict:
    """Run a parsed config into ``output`` (default ``output.dir``); returns the manifest. What
    ``prmflow run`` and ``prmflow.run`` share."""
    out_dir = output or config.output.dir
    if not out_dir:
        raise ConfigError("output: no output directory: pass --output DIR (output= in Python) or set output.dir")
    out_dir = resolve(out_dir)  # once: the lock, staging, publication, cache and input exclusion all use it
    options = beam_options(list(beam_args))  # a mistyped Beam flag fails here, before anything runs
    started = time.time()
    reset_caches()  # a warm in-process engine from an earlier run must not change what this run records
    # Everything is written under a staging directory and published only once complete (output.py).
    cache_root = FileSystems.join(out_dir, CACHE_DIR)
    try:
        with publishing(out_dir, config.output.overwrite, config.digest()) as staging:
            if fresh:
                delete_cache(cache_root)
            cache_root = open_cache(cache_root)  # None: a _cache prmflow did not make is left alone
            try:
                with excluding(out_dir), _quiet_environment_errors(), beam.Pipeline(options=options) as p:
                    build(p, config, staging, cache_root, read_splits)
            except RuntimeError as e:  # Beam wraps a worker's exception in a RuntimeError
                cause = io_error(e)
                if cause is None:
                    raise
                # a full disk or a lost mount: one line (cli.py), the previous output kept (the staging goes)
                raise OSError(cause.errno, f"writing the run's output failed: {cause.strerror or cause}") from e
            manifest = complete_run(staging, p.result, started)
            if not manifest["reconciliation"]["ok"]:
                raise NotPublished("counts do not reconcile")
    except NotPublished as e:  # exit 1 (cli.py): kept aside, the published output untouched, the cache kept
        print(format_summary(manifest), flush=True)
        print(f"prmflow run: NOT published, the counts do not reconcile: {out_dir} keeps its previous output; "
              f"this run's output is kept under {e.kept} (prmflow inspect {e.kept} --partial)", file=sys.stderr)
        return manifest
    keep = config.output.keep_cache
    if cache_root is not None and not keep:  # None: a _cache prmflow did not make, never deleted
        # the run is published: nothing left to resume, but a run that samples keeps its samples
        # (unless keep_cache: false), so later stages added to the same config do not resample
        delete_cache(cache_root, keep=("sample",) if keep is None and config.samples_trajectories else ())
    print(format_summary(manifest), flush=True)
    for line in all_dead_lines(manifest, out_dir):
        print(f"prmflow run: {line}", file=sys.stderr, flush=True)
    return manifest
