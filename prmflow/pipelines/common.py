"""What every prmflow pipeline shares: Beam options, the output directory, counts and the manifest."""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections import defaultdict

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows

from prmflow.config import ConfigError
from prmflow.pipelines.output import MANIFEST, SUCCESS, _delete, publishing  # noqa: F401 - the run's output API
from prmflow.schemas import SCHEMA_VERSION, TABLES
from prmflow.sources.reader import read_checks
from prmflow.transforms.cache import rejected_counts
from prmflow.transforms.write import PARTS_DIR

log = logging.getLogger("prmflow")

LOCAL_RUNNER = "FnApiRunner"


def unparseable_beam_args(beam_args: list[str]) -> list[str]:
    """The arguments no Beam option class parses, each with Beam's own suggestion.

    Beam only logs "Unparseable argument" and runs on without the flag, so a mistyped
    ``--direct_num_worker=2`` would give a single-process run with exit 0. This parses the flags
    exactly as ``PipelineOptions.get_all_options`` does (every option class, no abbreviations) and
    suggests a close match the same way (``difflib``).
    """
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - the parser Beam builds for itself
    _, unknown = parser.parse_known_args(beam_args)
    known = [opt for action in parser._actions for opt in action.option_strings]  # noqa: SLF001
    out = []
    for arg in unknown:
        msg = repr(arg)
        if arg.startswith("--"):
            close = difflib.get_close_matches(arg.split("=", 1)[0], known)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
        out.append(msg)
    return out


def beam_options(beam_args: list[str]) -> PipelineOptions:
    """Every Beam option passes through; local runs default to FnApiRunner, since the DirectRunner of
    Beam 2.77 first tries to download another runner binary. An argument Beam cannot parse is a
    ConfigError here, before anything runs."""
    bad = unparseable_beam_args(beam_args)
    if bad:
        raise ConfigError(f"unparseable Beam argument{'s' if len(bad) > 1 else ''}: {', '.join(bad)}")
    if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        beam_args = [f"--runner={LOCAL_RUNNER}", *beam_args]
    return PipelineOptions(beam_args, save_main_session=False)


def _one(_) -> int:
    return 1


class _BundleSums(beam.DoFn):
    """Sums ``value_fn`` by ``key_fn`` over a bundle; emits ((metric, key), n) once per key at its end."""

    def __init__(self, metric: str, key_fn, value_fn) -> None:
        self.metric, self.key_fn, self.value_fn = metric, key_fn, value_fn

    def start_bundle(self) -> None:
        self.sums: dict = {}

    def process(self, element):
        key = self.key_fn(element)
        self.sums[key] = self.sums.get(key, 0) + self.value_fn(element)

    def finish_bundle(self):
        sums, self.sums = self.sums, {}
        for key, n in sums.items():
            yield GlobalWindows.windowed_value(((self.metric, key), n))


class Tally(beam.PTransform):
    """Counts (or sums ``value_fn`` over) a PCollection by ``key_fn(element)`` -> ((metric, key), n),
    for the manifest. Summed within each bundle first: one call per element, one output per key."""

    def __init__(self, metric: str, key_fn, value_fn=_one) -> None:
        super().__init__(label=f"Tally[{metric}]")
        self.metric, self.key_fn, self.value_fn = metric, key_fn, value_fn

    def expand(self, pcoll):
        return (
            pcoll
            | "Key" >> beam.ParDo(_BundleSums(self.metric, self.key_fn, self.value_fn))
            | "Sum" >> beam.CombinePerKey(sum)
        )


def nest_counts(tallies: list) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (metric, key), n in tallies:
        out[metric][str(key)] = out[metric].get(str(key), 0) + n
    return {m: dict(sorted(v.items())) for m, v in sorted(out.items())}


def total(counts: dict, metric: str) -> int:
    return sum(counts.get(metric, {}).values())


def reconcile(counts: dict) -> dict[str, object]:
    """Nothing is lost: every row read is parsed or dead-lettered, every solution becomes a
    trajectory or a dead letter, and every dead letter is written. Engine counts add the batches
    the stage cache supplied (``reused_*``) to those the engine ran."""
    engine = counts.get("engine", {})

    def sampled(key: str) -> int:
        return engine.get(key, 0) + engine.get(f"reused_{key}", 0)

    checks = {
        "records_read == records_parsed + records_dead": (
            total(counts, "records_read"), total(counts, "records_parsed") + total(counts, "records_dead"),
        ),
        "solutions + samples == trajectories + dead at segment": (
            total(counts, "solutions") + sampled("samples"),
            total(counts, "trajectories") + counts.get("dead_by_stage", {}).get("segment", 0)
            + total(counts, "duplicates"),  # identical trajectories (same id) are kept once
        ),
        **read_checks(counts),
        "sample requests == answered + dead at sample": (
            total(counts, "sample_requests"),
            # failed results are dead letters, and so is every request of a batch whose call raised
            sampled("requests") - sampled("failures") + counts.get("dead_by_stage", {}).get("sample", 0),
        ),
        "rollouts written == sum of start_states.rollouts": (
            counts.get("rollouts_rows", {}).get("all", 0), total(counts, "start_state_rollouts"),
        ),
        "sum of steps.mc_rollouts == rollouts of start states that measure a step": (
            total(counts, "mc_rollouts"), total(counts, "step_state_rollouts"),
        ),
        "trajectories into the judge == judged + dead at judge": (
            total(counts, "judge_in"), total(counts, "judged") + counts.get("dead_by_stage", {}).get("judge", 0),
        ),
        "dead letters written == dead letters": (
            total(counts, "dead_letters_written"), total(counts, "dead_letters"),
        ),
    }
    return {
        "ok": all(a == b for a, b in checks.values()),
        "checks": {k: {"left": a, "right": b, "ok": a == b} for k, (a, b) in checks.items()},
    }


def finalize(_, out_dir: str, config: dict, tallies: list, shard_stats: list) -> dict:
    """Runs once after every shard is merged (each table has all its shards, empty ones included):
    reconcile counts, write manifest.json, remove the part files."""
    stats = list(shard_stats)
    # the merge of each shard counted its rows (per source, status, reason, duplicates dropped)
    counts = nest_counts([*tallies, *(t for s in stats for t in s.get("tallies", ()))])
    _delete([FileSystems.join(out_dir, PARTS_DIR)])  # a failed run's go with its staging directory
    for table in TABLES:
        counts.setdefault(f"{table}_rows", {})["all"] = sum(s["rows"] for s in stats if s["table"] == table)
    manifest = {
        "prmflow_schema_version": SCHEMA_VERSION,
        "config": config,
        "counts": counts,
        "reconciliation": reconcile(counts),
        "shards": sorted(
            ({"table": s["table"], "shard": s["shard"], "rows": s["rows"],
              "file": s["path"].rsplit("/", 2)[-2] + "/" + s["path"].rsplit("/", 1)[-1]} for s in stats),
            key=lambda s: (s["table"], s["shard"]),
        ),
    }
    write_json(FileSystems.join(out_dir, MANIFEST), manifest)
    return manifest


def write_json(path: str, data: dict) -> None:
    with FileSystems.create(path) as f:
        f.write(json.dumps(data, indent=2, sort_keys=True, default=str).encode("utf-8"))


def read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def beam_counters(result) -> dict[str, int]:
    """Beam's own counters (per-reason dead letters, outcome statuses, engine metrics)."""
    try:
        found = result.metrics().query(beam.metrics.MetricsFilter().with_namespace("prmflow"))
    except Exception:  # noqa: BLE001 - some runners don't report metrics; the manifest has counts anyway
        return {}
    out: dict[str, int] = {}
    for c in found.get("counters", []):
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + (c.committed or c.attempted or 0)
    return dict(sorted(out.items()))


def complete_run(out_dir: str, result, started: float) -> dict:
    """After the pipeline finished: add timings and Beam counters to the (staged) manifest.
    ``_SUCCESS`` is written when the output is published (``pipelines/output.py``)."""
    path = FileSystems.join(out_dir, MANIFEST)
    manifest = read_json(path)
    manifest["timings"] = {"wall_seconds": round(time.time() - started, 3)}
    manifest["beam_counters"] = beam_counters(result)
    rejected = rejected_counts(manifest["beam_counters"])
    if rejected:  # stage-cache entries found but not used (transforms/cache.py): computed again
        manifest["counts"]["cache_rejected"] = rejected
    write_json(path, manifest)
    return manifest


def format_summary(manifest: dict) -> str:
    counts = manifest["counts"]
    lines = [f"prmflow run {manifest['config'].get('name')!r}: {manifest['timings']['wall_seconds']:.1f} s"]
    for metric in ("records_read", "records_parsed", "records_dead", "solutions", "sample_requests", "trajectories"):
        if metric in counts:
            per = ", ".join(f"{k}={v}" for k, v in counts[metric].items())
            lines.append(f"  {metric:<16} {total(counts, metric):>8}   ({per})")
    for table in TABLES:
        lines.append(f"  wrote {table:<13} {counts.get(f'{table}_rows', {}).get('all', 0):>8} rows")
    engine = counts.get("engine")
    if engine:
        lines.append("  engine           " + ", ".join(f"{k}={v}" for k, v in engine.items()))
    reasons = counts.get("dead_letters", {})
    if reasons:
        lines.append("  dead letters by reason: " + ", ".join(f"{k}={v}" for k, v in reasons.items()))
    rec = manifest["reconciliation"]
    lines.append(f"  counts reconcile: {'yes' if rec['ok'] else 'NO'}")
    if not rec["ok"]:
        for name, c in rec["checks"].items():
            if not c["ok"]:
                lines.append(f"    {name}: {c['left']} != {c['right']}")
    return "\n".join(lines)


def all_dead_sources(manifest: dict) -> list[str]:
    """The inputs that read rows but parsed none: every row dead-lettered (a wrong field name, a
    wrong ``format``). Such a run still publishes (the dead letters are its result) but exits 1."""
    counts = manifest["counts"]
    read, parsed = counts.get("records_read", {}), counts.get("records_parsed", {})
    return sorted(s for s, n in read.items() if n and not parsed.get(s))


def first_dead_reasons(out_dir: str, source: str, limit: int = 3) -> list[str]:
    """The first distinct dead-letter reasons of ``source`` in a published output (by file, line)."""
    import pyarrow.parquet as pq

    from prmflow.transforms.read import expand_path

    rows: list[dict] = []
    for path in expand_path(FileSystems.join(out_dir, "dead_letters", "*.parquet")):
        with FileSystems.open(path) as f:
            table = pq.read_table(f, columns=["source", "reason", "detail", "source_file", "location"])
        rows += [r for r in table.to_pylist() if r["source"] == source]
    rows.sort(key=lambda r: (r["source_file"] or "", r["location"] if r["location"] is not None else -1))
    out: list[str] = []
    for r in rows:
        line = f"{r['reason']}: {r['detail']}" + (f" (line {r['location']})" if r["location"] is not None else "")
        if not any(o.startswith(f"{r['reason']}: {r['detail']}") for o in out):
            out.append(line)
        if len(out) == limit:
            break
    return out


def all_dead_lines(manifest: dict, out_dir: str) -> list[str]:
    """One line per input whose every row was dead-lettered, with its first reasons."""
    lines = []
    for source in all_dead_sources(manifest):
        n = manifest["counts"]["records_read"][source]
        reasons = "; ".join(first_dead_reasons(out_dir, source)) or "see the dead_letters table"
        lines.append(f"input {source!r}: all {n} rows were dead-lettered, nothing to label. First reasons: {reasons}")
    return lines
