"""The labeling pipeline: read -> segment -> outcome label -> step rows -> Parquet shards + manifest.

``build(pipeline, config, out_dir)`` wires the graph; ``run(argv)`` is the entry point behind
``prmflow run CONFIG [--output DIR] [beam options]``.
"""

from __future__ import annotations

import argparse
import logging
import time

import apache_beam as beam

from prmflow.config import ConfigError, RunConfig, load_config
from prmflow.pipelines.common import (
    Tally,
    beam_options,
    complete_run,
    finalize,
    format_summary,
    prepare_output,
)
from prmflow.prompts import SamplingConfig
from prmflow.rollouts import ProcessConfig
from prmflow.samplers import SamplerConfig
from prmflow.samplers.shared import reset_caches
from prmflow.schemas import TABLES, to_row
from prmflow.sources import normalise_prompt
from prmflow.transforms.dead_letters import DEAD
from prmflow.transforms.label import LabelOutcomes, SegmentDrafts, join_reference, to_step_rows
from prmflow.transforms.read import ReadInput
from prmflow.transforms.rollout import LabelSteps
from prmflow.transforms.sample import SampleTrajectories
from prmflow.transforms.weights import ConsistencyWeights
from prmflow.transforms.write import WriteTable
from prmflow.weights import WeightsConfig

log = logging.getLogger("prmflow")

ID_COLUMNS = {
    "problems": "problem_id", "trajectories": "trajectory_id", "steps": "step_id",
    "start_states": "start_state_id", "rollouts": "rollout_id", "dead_letters": "dead_letter_id",
}


def _first_by_index(problems):
    """The same problem read twice (ProcessBench: one row per generator) is kept once, the earliest."""
    return min(problems, key=lambda p: (p.source_file or "", p.source_index or 0))


def _read_counted(p, spec, config: RunConfig, dead_all: list, tallies: list):
    """One input read, its rows counted as read / parsed / dead-lettered, its dead letters kept."""
    name = spec.source_name
    raws, parsed, dead = p | ReadInput(spec, config.limits)
    tallies.append(raws | f"CountRead[{name}]" >> Tally("records_read", lambda r, n=name: n))
    tallies.append(parsed | f"CountParsed[{name}]" >> Tally("records_parsed", lambda r, n=name: n))
    tallies.append(dead | f"CountDead[{name}]" >> Tally("records_dead", lambda r, n=name: n))
    dead_all.append(dead)
    return parsed


def read_inputs(p, config: RunConfig):
    """All inputs -> (parsed records, dead letters, tallies)."""
    parsed_all, dead_all, tallies = [], [], []
    for spec in config.inputs:
        name = spec.source_name
        parsed = _read_counted(p, spec, config, dead_all, tallies)
        if spec.references:
            refs = (
                _read_counted(p, spec.reference_input(), config, dead_all, tallies)
                | f"KeyReferences[{name}]" >> beam.Map(lambda x: (normalise_prompt(x.problem.prompt), x.problem.reference_answer))
                | f"KeepAnswered[{name}]" >> beam.Filter(lambda kv: kv[1] is not None)
            )
            parsed = parsed | f"JoinReferences[{name}]" >> beam.Map(join_reference, beam.pvalue.AsDict(refs))
        parsed_all.append(parsed)
    parsed = parsed_all | "FlattenInputs" >> beam.Flatten()
    return parsed, dead_all, tallies


def _policy(config: RunConfig) -> tuple[SamplerConfig, SamplingConfig]:
    extra = config.extra or {}
    if not extra.get("sampler"):
        raise ConfigError("a process section needs a sampler section: rollouts are sampled from the policy")
    sampler = SamplerConfig.from_dict({"seed": config.seed, **extra["sampler"]})
    return sampler, SamplingConfig.from_dict(extra.get("sampling"))


def sample(config: RunConfig, problems, dead_all: list, tallies: list):
    """The policy's trajectories for every problem, when the config has a ``sampler`` section."""
    sampler, sampling = _policy(config)
    requests, items, dead, engine = problems | "SampleTrajectories" >> SampleTrajectories(
        sampler, sampling, config.seed, config.segment, config.limits.max_steps
    )
    dead_all.append(dead)
    tallies.append(requests | "CountRequests" >> Tally("sample_requests", lambda pr: pr[0].source))
    tallies.append(engine | "CountSamplingEngine" >> Tally("engine", lambda kv: kv[0], lambda kv: kv[1]))
    return items


def label_steps(config: RunConfig, labeled, provenance: dict, dead_all: list, tallies: list) -> dict:
    """Step labels from rollouts (a ``process`` section) -> the steps, start_states, rollouts tables."""
    steps, start_states, rollouts, dead, engine = labeled | "LabelSteps" >> LabelSteps(
        *_policy(config), ProcessConfig.from_dict(config.extra["process"]), config.outcome, config.seed, provenance
    )
    dead_all.append(dead)
    tallies.append(engine | "CountRolloutEngine" >> Tally("engine", lambda kv: kv[0], lambda kv: kv[1]))
    tallies.append(start_states | "CountStateRollouts" >> Tally(
        "start_state_rollouts", lambda r: r["source"], lambda r: r["rollouts"] or 0))
    tallies.append(start_states | "CountStepStateRollouts" >> Tally(
        "step_state_rollouts", lambda r: r["source"], lambda r: (r["rollouts"] or 0) if r["step_index"] is not None else 0))
    return {"steps": steps, "start_states": start_states, "rollouts": rollouts}


def build(p, config: RunConfig, out_dir: str) -> None:
    parsed, dead_all, tallies = read_inputs(p, config)
    provenance = {"config": config.digest(), "outcome": config.outcome.labeler, "segment": config.segment.strategy}

    problem_objs = (
        parsed
        | "KeyProblems" >> beam.Map(lambda x: (x.problem.problem_id, x.problem))
        | "DedupeProblems" >> beam.CombinePerKey(_first_by_index)
        | "Problems" >> beam.Values()
    )
    problems = problem_objs | "ProblemRows" >> beam.Map(to_row)
    items, seg_dead = parsed | "Segment" >> beam.ParDo(
        SegmentDrafts(config.segment, config.limits.max_steps)
    ).with_outputs(DEAD, main="items")
    dead_all.append(seg_dead)
    tallies.append(parsed | "CountSolutions" >> beam.FlatMap(lambda x: [x.problem.source] * len(x.drafts))
                   | Tally("solutions", lambda s: s))
    if (config.extra or {}).get("sampler") and _policy(config)[1].n > 0:
        sampled = sample(config, problem_objs, dead_all, tallies)
        items = (items, sampled) | "AllTrajectories" >> beam.Flatten()

    labeled = (
        items
        | "Redistribute" >> beam.Reshuffle()
        | "LabelOutcomes" >> beam.ParDo(LabelOutcomes(config.outcome))
    )
    trajectories = labeled | "TrajectoryRows" >> beam.Map(lambda item: to_row(item[1]))
    tables = {"problems": problems, "trajectories": trajectories}
    if (config.extra or {}).get("process"):
        tables.update(label_steps(config, labeled, provenance, dead_all, tallies))
    else:
        tables["steps"] = labeled | "StepRows" >> beam.FlatMap(to_step_rows, provenance)
    if (config.extra or {}).get("consistency"):
        tables["steps"] = tables["steps"] | "ConsistencyWeights" >> ConsistencyWeights(
            WeightsConfig.from_dict(config.extra["consistency"]))
    tallies.append(tables["steps"] | "CountMcRollouts" >> Tally(
        "mc_rollouts", lambda r: r["source"], lambda r: r["mc_rollouts"] or 0))
    dead = dead_all | "FlattenDead" >> beam.Flatten() | "DeadRows" >> beam.Map(to_row)
    tallies.append(trajectories | "CountTrajectories" >> Tally("trajectories", lambda r: r["source"]))
    tallies.append(trajectories | "CountOutcomes" >> Tally("outcome_status", lambda r: r["outcome_status"]))
    tallies.append(dead | "CountDeadReasons" >> Tally("dead_letters", lambda r: f"{r['stage']}/{r['reason']}"))
    tallies.append(dead | "CountDeadByStage" >> Tally("dead_by_stage", lambda r: r["stage"]))
    tallies.append(dead | "CountDeadWritten" >> Tally("dead_letters_written", lambda r: r["source"]))

    tables["dead_letters"] = dead
    write(p, config, out_dir, tables, tallies)


def write(p, config: RunConfig, out_dir: str, tables: dict, tallies: list) -> None:
    """Write each table's rows as shards, then the manifest once everything is written."""
    n = config.output.num_shards
    stats = [
        rows | WriteTable(out_dir, table, TABLES[table][1], ID_COLUMNS[table], n)
        for table, rows in tables.items()
    ]
    all_stats = stats | "FlattenShardStats" >> beam.Flatten()
    all_tallies = tallies | "FlattenTallies" >> beam.Flatten()
    _ = (
        p
        | "Once" >> beam.Create([None])
        | "Finalize" >> beam.Map(
            finalize, out_dir, n, config.to_dict(),
            beam.pvalue.AsList(all_tallies), beam.pvalue.AsList(all_stats),
        )
    )


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="prmflow run", description="Run a prmflow labeling pipeline.")
    parser.add_argument("config", help="the run's YAML config")
    parser.add_argument("--output", help="output directory or URL (overrides output.dir)")
    return parser.parse_known_args(argv)


def run(argv: list[str] | None = None) -> dict:
    """Build and run the pipeline; returns the manifest. Unrecognised arguments go to Beam."""
    args, beam_args = parse_args(argv)
    config = load_config(args.config)
    out_dir = args.output or config.output.dir
    if not out_dir:
        raise SystemExit("prmflow run: no output directory: pass --output DIR or set output.dir in the config")
    prepare_output(out_dir, config.output.overwrite)
    started = time.time()
    reset_caches()  # a warm in-process engine from an earlier run must not change what this run records
    with beam.Pipeline(options=beam_options(beam_args)) as p:
        build(p, config, out_dir)
    result = p.result
    manifest = complete_run(out_dir, result, started)
    print(format_summary(manifest), flush=True)
    return manifest
