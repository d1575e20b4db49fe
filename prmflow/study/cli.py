"""``prmflow study ambiguity``: run (or reuse) one labeling run on the embedded domain, sweep verifier
noise against labeling methods, write ambiguity.parquet, ambiguity.md and plots/.

Default size: the embedded demo (100 arith problems, 4 samples each) with N = 8 rollouts per step
boundary, 14 noise channels x 3 seeds x 8 methods. The run is the only part that samples; the sweep
relabels its recorded rollouts (see :mod:`prmflow.study.ambiguity`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from prmflow.study.ambiguity import METHOD_NOTES, METHODS, StudyConfig, default_channels, load_run, sweep

BASE_CONFIG = {
    "name": "ambiguity-base",
    "seed": 0,
    "inputs": [{"name": "arith", "format": "arith", "count": 100, "seed": 1, "import_solutions": False}],
    "sampler": {"backend": "vllm", "model": "builtin:arith-tiny", "dtype": "float32", "max_model_len": 256,
                "kv_cache_memory_bytes": 268435456, "block_size": 32, "enforce_eager": True},
    "sampling": {"n": 4, "temperature": 1.0, "max_tokens": 96, "template": "arith", "batch_size": 400},
    "outcome": {"labeler": "math", "options": {"timeout_s": 5}},
    "process": {"method": "mc", "rollouts": 8, "max_tokens": 96, "batch_trajectories": 100},
    "output": {"num_shards": 1},
}


def _fmt(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if not sd or sd < 0.0005 else f"{mean:.3f} ± {sd:.3f}"


def aggregate(rows: list[dict], metric: str) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(channel, method) -> (mean, sample sd) of ``metric`` over seeds."""
    cells: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        cells.setdefault((r["channel"], r["method"]), [])
        if r[metric] is not None:
            cells[(r["channel"], r["method"])].append(r[metric])
    out = {}
    for key, values in cells.items():
        if not values:
            out[key] = (None, None)
            continue
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        out[key] = (mean, sd)
    return out


def markdown(rows: list[dict], meta: dict) -> str:
    channels = list(dict.fromkeys(r["channel"] for r in rows))
    j = aggregate(rows, "youden_j")
    lines = [
        "# Ambiguity study",
        "",
        f"Run: `{meta['run_dir']}` ({meta['trajectories']} trajectories with exact gold, {meta['rollouts']} rollouts, "
        f"N = {meta['rollouts_per_step']}). Seeds {meta['seeds']}; cells are mean ± sample sd over seeds. "
        "J is the verifier's measured Youden J (TPR - FPR) on the flipped verdicts.",
        "",
    ]
    for metric, title in (("step_accuracy", "Step-label accuracy (steps up to the gold first error)"),
                          ("processbench_f1", "ProcessBench F1 (first-error accuracy, harmonic mean over "
                                              "erroneous and correct trajectories)")):
        agg = aggregate(rows, metric)
        lines += [f"## {title}", "", "| channel | J | " + " | ".join(METHODS) + " |",
                  "|---|---|" + "---|" * len(METHODS)]
        for c in channels:
            jm = j[(c, METHODS[0])][0]
            lines.append(f"| {c} | {jm:.3f} | " + " | ".join(_fmt(*agg[(c, m)]) for m in METHODS) + " |")
        lines.append("")
    cost = aggregate(rows, "rollouts_per_step")
    labelled = aggregate(rows, "labelled")
    lines += ["## Cost and coverage (clean verifier)", "", "| method | rollouts per step | steps labelled |",
              "|---|---|---|"]
    clean = channels[0]
    for m in METHODS:
        lines.append(f"| {m} | {_fmt(cost[(clean, m)][0], None)} | {_fmt(labelled[(clean, m)][0], None)} |")
    lines += ["", "## Methods", ""] + [f"- **{m}**: {METHOD_NOTES[m]}" for m in METHODS]
    lines += ["", "## Not in this table", ""] + [f"- {note}" for note in meta["not_included"]]
    return "\n".join(lines) + "\n"


def _not_included() -> list[str]:
    from prmflow.models import resolve_model_path

    notes = []
    try:
        judge_ready = (Path(resolve_model_path("builtin:arith-judge-tiny")) / "config.json").is_file()
    except ValueError:
        judge_ready = False
    if not judge_ready:
        notes.append("the embedded judge as verifier, and judge+MC consensus: builtin:arith-judge-tiny has not "
                     "shipped in this checkout")
    else:
        notes.append("the embedded judge as verifier, and judge+MC consensus: the judge has shipped but the study "
                     "does not run it yet")
    notes.append("a PRM trained on each cell's labels: the PRM trainer (prmflow train-prm) is not part of the study yet")
    return notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=["ambiguity"], help="the study to run (ambiguity: docs/ambiguity.md)")
    parser.add_argument("--out", default="out/ambiguity", help="study directory (default out/ambiguity)")
    parser.add_argument("--from", dest="from_run", default=None,
                        help="reuse a finished run (with mc rollouts and exact gold) instead of running one")
    parser.add_argument("--count", type=int, default=100, help="arith problems of the run (default 100)")
    parser.add_argument("--rollouts", type=int, default=8, help="N rollouts per step boundary (default 8)")
    parser.add_argument("--seeds", type=int, default=3, help="channel seeds per cell (default 3)")
    parser.add_argument("--calibration-size", type=int, default=50,
                        help="gold trajectories for the calibrated noise-aware method (default 50)")


def main(args: list[str]) -> int:
    from prmflow.core.cliparse import parser as make_parser

    parser = make_parser("prmflow study", __doc__.split("\n\n")[0], add_arguments)
    ns = parser.parse_args(args)
    for name in ("count", "rollouts", "seeds", "calibration_size"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(ns, name)}")
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    run_dir = ns.from_run
    rollouts_per_step = ns.rollouts
    if run_dir is None:
        from prmflow.pipelines.label import run

        config = json.loads(json.dumps(BASE_CONFIG))
        config["inputs"][0]["count"] = ns.count
        config["process"]["rollouts"] = ns.rollouts
        (out / "base.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        run_dir = str(out / "base")
        manifest = run([str(out / "base.yaml"), "--output", run_dir])
        if not manifest["reconciliation"]["ok"]:
            print("prmflow study: the base run's counts do not reconcile; see its manifest")
            return 1
    from prmflow.analysis.views import connect

    trajectories = load_run(connect(run_dir))
    if ns.from_run is not None:
        counts = [len(v) for t in trajectories for v in t.rollouts.values()]
        rollouts_per_step = max(counts, default=ns.rollouts)
    if not any(t.rollouts for t in trajectories):
        print(f"prmflow study: {run_dir} has no rollouts on trajectories with exact gold (process.method mc on arith)")
        return 1
    swept = time.time()
    config = StudyConfig(seeds=tuple(range(ns.seeds)), calibration_size=ns.calibration_size,
                         rollouts_per_step=rollouts_per_step, channels=tuple(default_channels()))
    rows = list(sweep(trajectories, config))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, out / "ambiguity.parquet")
    meta = {
        "run_dir": run_dir, "trajectories": len(trajectories), "rollouts_per_step": rollouts_per_step,
        "rollouts": sum(len(v) for t in trajectories for v in t.rollouts.values()), "seeds": list(config.seeds),
        "calibration_size": ns.calibration_size, "methods": list(METHODS),
        "channels": [c.name for c in config.channels], "not_included": _not_included(),
        "run_seconds": round(swept - started, 1), "sweep_seconds": round(time.time() - swept, 1),
    }
    (out / "ambiguity.md").write_text(markdown(rows, meta), encoding="utf-8")
    from prmflow.study.plots import study_plots

    study_plots(table, out / "plots")
    (out / "study.json").write_text(json.dumps({"study": "ambiguity", **meta}, indent=2) + "\n", encoding="utf-8")
    print((out / "ambiguity.md").read_text(encoding="utf-8"))
    print(f"study written to {out} (run {meta['run_seconds']} s, sweep {meta['sweep_seconds']} s)")
    return 0


__all__ = ["BASE_CONFIG", "aggregate", "main", "markdown"]
