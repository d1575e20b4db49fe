"""The ambiguity study: how step-label quality falls as the outcome verifier gets noisy.

One labeling run on the embedded arith domain supplies, for every trajectory, its exact gold step
labels and, for every step boundary, N graded rollouts. The verifier's verdicts on those rollouts
(and on the trajectories themselves) are then passed through :mod:`prmflow.labelers.outcome.noise`'s
seeded channel, once per (channel, seed), and every labeling method relabels the steps from the
noisy counts. A flip depends only on (seed, rollout id), so this is exactly what a run with
``outcome.noise`` would record for the same rollouts, without sampling them again: the policy's
rollouts do not depend on the verifier, only their verdicts do.

Each cell is scored against exact truth with the same SQL as ``prmflow inspect``'s gold table
(:mod:`prmflow.analysis.gold`): step-label accuracy up to the gold first error, ProcessBench F1,
rollouts spent, and the verifier's Youden J = TPR - FPR measured on the flipped verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa

from prmflow.analysis.calibrate import estimate as estimate_calibration
from prmflow.analysis.gold import GOLD_SQL, METHOD_LABELS
from prmflow.labelers.outcome.noise import NoiseConfig, noisy_verdict
from prmflow.labelers.process import (
    BinarySearch,
    BinarySearchConfig,
    ConsistencyConfig,
    MCConfig,
    RelativeConfig,
    agreement,
    mc_labels,
    relative_labels,
    run_rounds,
)
from prmflow.labelers.process.noise_aware import NoiseAwareConfig, noise_aware_labels

SYMMETRIC = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
ONE_SIDED = (0.05, 0.1, 0.2, 0.3)
METHODS = (
    "all-good", "mc-hard", "mc-soft", "noise-aware", "noise-aware-calibrated", "binary-search", "relative-ratio",
    "rel-effective", "consistency-weighted",
)
METHOD_NOTES = {
    "all-good": "the no-information baseline: every step labelled good, no rollouts",
    "mc-hard": "Math-Shepherd HE: good iff any of N rollouts succeeds",
    "mc-soft": "Math-Shepherd SE, read as a label: good iff MC value > 0.5",
    "noise-aware": "de-biased value; good iff successes beat a dead prefix's false positives (binomial, "
                   "alpha 0.05), with the channel's true (rho0, rho1)",
    "noise-aware-calibrated": "the same with (rho0, rho1) estimated by calibrate on a gold subset of trajectories",
    "binary-search": "OmegaPRM: first prefix with MC value 0, wrong-verdict trajectories only",
    "relative-ratio": "GenPRM: v_i / v_(i-1) >= 0.8",
    "rel-effective": "StepWiser Rel-Effective: Q_i + 0.4 (Q_mu(i) - Q_mu(i-1)) > 0, best-of-4 prover",
    "consistency-weighted": "MC hard labels kept where the MC pseudo-label (value > 0.5) agrees with the "
                            "trajectory's verdict (MetaStone-S1 hard weights)",
}


@dataclass(frozen=True)
class Channel:
    """One verifier-noise setting of the sweep."""

    name: str
    kind: str
    """clean | symmetric | false-positive | false-negative"""
    rho0: float
    rho1: float

    def config(self, seed: int) -> NoiseConfig:
        return NoiseConfig(rho0=self.rho0, rho1=self.rho1, seed=seed)


def default_channels(symmetric: Sequence[float] = SYMMETRIC, one_sided: Sequence[float] = ONE_SIDED) -> list[Channel]:
    out = [Channel(f"p={p:g}", "clean" if p == 0 else "symmetric", p, p) for p in symmetric]
    out += [Channel(f"rho0={r:g}", "false-positive", r, 0.0) for r in one_sided]
    out += [Channel(f"rho1={r:g}", "false-negative", 0.0, r) for r in one_sided]
    return out


@dataclass(frozen=True)
class StudyTrajectory:
    trajectory_id: str
    num_steps: int
    outcome: float | None
    """The clean verdict on the whole solution."""
    gold_outcome: float | None
    gold_first_error: int
    gold_labels: tuple[float | None, ...]
    rollouts: dict[int, list[tuple[str, float | None]]] = field(default_factory=dict)
    """k -> [(rollout_id, clean verdict)] for the prefix with k steps."""


def load_run(con: duckdb.DuckDBPyConnection) -> list[StudyTrajectory]:
    """The study's inputs from a finished run's views: trajectories with exact gold, and their rollouts."""
    steps = con.execute("""
        SELECT trajectory_id, list(gold_label ORDER BY step_index), any_value(gold_first_error), count(*)
        FROM (SELECT DISTINCT trajectory_id, step_index, gold_label, gold_first_error FROM steps
              WHERE gold_first_error IS NOT NULL)
        GROUP BY trajectory_id""").fetchall()
    outcomes = dict((t, (o, g)) for t, o, g in con.execute(
        "SELECT trajectory_id, coalesce(clean_outcome, outcome), gold_outcome FROM trajectories").fetchall())
    rollouts: dict[str, dict[int, list[tuple[str, float | None]]]] = {}
    for tid, k, rid, verdict in con.execute(
            "SELECT trajectory_id, k, rollout_id, coalesce(clean_outcome, outcome) FROM rollouts "
            "ORDER BY trajectory_id, k, index").fetchall():
        rollouts.setdefault(tid, {}).setdefault(k, []).append((rid, verdict))
    out = []
    for tid, gold, first, n in sorted(steps):
        outcome, gold_outcome = outcomes.get(tid, (None, None))
        out.append(StudyTrajectory(tid, n, outcome, gold_outcome, first, tuple(gold), rollouts.get(tid, {})))
    return out


@dataclass
class NoisyView:
    """One (channel, seed) draw: the noisy counts per trajectory and the verifier's Youden J."""

    successes: list[list[int]]
    rollouts: list[list[int]]
    outcome_correct: list[bool | None]
    youden_j: float | None
    tpr: float | None
    fpr: float | None


def noisy_view(trajectories: Sequence[StudyTrajectory], channel: NoiseConfig) -> NoisyView:
    tp = fn = fp = tn = 0
    successes, rollouts, outcomes = [], [], []

    def see(clean: float | None, key: str) -> float | None:
        nonlocal tp, fn, fp, tn
        noisy = noisy_verdict(clean, key, channel)
        if clean is not None:
            right, said = clean >= 0.5, noisy >= 0.5
            tp += right and said
            fn += right and not said
            fp += not right and said
            tn += not right and not said
        return noisy

    for t in trajectories:
        s_row, m_row = [], []
        for k in range(1, t.num_steps + 1):
            verdicts = [see(v, rid) for rid, v in t.rollouts.get(k, [])]
            judged = [v for v in verdicts if v is not None]
            s_row.append(sum(1 for v in judged if v >= 0.5))
            m_row.append(len(judged))
        successes.append(s_row)
        rollouts.append(m_row)
        verdict = see(t.outcome, f"trajectory/{t.trajectory_id}")
        outcomes.append(None if verdict is None else verdict >= 0.5)
    tpr = tp / (tp + fn) if tp + fn else None
    fpr = fp / (fp + tn) if fp + tn else None
    j = tpr - fpr if tpr is not None and fpr is not None else None
    return NoisyView(successes, rollouts, outcomes, j, tpr, fpr)


@dataclass
class MethodLabels:
    labels: list[list[float | None]]
    rollouts_spent: int
    note: str = ""


def label_methods(trajectories: Sequence[StudyTrajectory], view: NoisyView, channel: Channel,
                  calibration: tuple[float, float] | None, rollouts_per_step: int) -> dict[str, MethodLabels]:
    """Every method's step labels from one noisy view."""
    mc_cfg = MCConfig(rollouts_per_step)
    soft_cfg = MCConfig(rollouts_per_step, threshold=0.5)
    ratio, effective = RelativeConfig(mode="ratio"), RelativeConfig(mode="effective")
    consistency = ConsistencyConfig(mode="hard", threshold=0.5)
    oracle = NoiseAwareConfig(rho0=channel.rho0, rho1=channel.rho1)
    calibrated = None if calibration is None else NoiseAwareConfig(rho0=calibration[0], rho1=calibration[1])
    out = {m: MethodLabels([], 0) for m in METHODS}
    out["all-good"].labels = [[1.0] * t.num_steps for t in trajectories]
    mc_spent = sum(sum(m) for m in view.rollouts)
    for i, t in enumerate(trajectories):
        s, m, correct = view.successes[i], view.rollouts[i], view.outcome_correct[i]
        if correct is None:  # no verdict on the trajectory: no method labels it
            for method in METHODS[1:]:
                out[method].labels.append([None] * t.num_steps)
            continue
        hard = mc_labels(s, m, mc_cfg, outcome_correct=correct)
        out["mc-hard"].labels.append(hard.hard)
        out["mc-soft"].labels.append(mc_labels(s, m, soft_cfg, outcome_correct=correct).hard)
        out["noise-aware"].labels.append(noise_aware_labels(s, m, oracle, rollouts_per_step,
                                                            outcome_correct=correct).hard)
        out["noise-aware-calibrated"].labels.append(
            [None] * t.num_steps if calibrated is None
            else noise_aware_labels(s, m, calibrated, rollouts_per_step, outcome_correct=correct).hard)
        out["relative-ratio"].labels.append(relative_labels(hard.values, ratio))
        out["rel-effective"].labels.append(relative_labels(hard.values, effective))
        kept = agreement(hard.values, correct, consistency)
        out["consistency-weighted"].labels.append([h if k else None for h, k in zip(hard.hard, kept, strict=True)])
    for method in ("mc-hard", "mc-soft", "noise-aware", "noise-aware-calibrated", "relative-ratio", "rel-effective",
                   "consistency-weighted"):
        out[method].rollouts_spent = mc_spent
    out["binary-search"] = _binary_search(trajectories, view)
    return out


def _binary_search(trajectories: Sequence[StudyTrajectory], view: NoisyView) -> MethodLabels:
    config = BinarySearchConfig(threshold=0.0)
    judged = [i for i, c in enumerate(view.outcome_correct) if c is not None]
    searches = [BinarySearch(trajectories[i].num_steps, bool(view.outcome_correct[i]), config) for i in judged]
    spent = 0

    def answer(queries: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
        nonlocal spent
        found: list[tuple[int, int] | None] = []
        for s, k in queries:
            i = judged[s]
            successes, rollouts = view.successes[i][k - 1], view.rollouts[i][k - 1]
            spent += rollouts
            found.append((successes, rollouts) if rollouts else None)
        return found

    results = dict(zip(judged, run_rounds(searches, answer), strict=True))
    labels = [
        [None] * t.num_steps if results.get(i) is None else list(results[i].labels)
        for i, t in enumerate(trajectories)
    ]
    return MethodLabels(labels, spent)


def score(trajectories: Sequence[StudyTrajectory], methods: dict[str, MethodLabels]) -> dict[str, dict]:
    """Each method's gold metrics (prmflow.analysis.gold's SQL) and its share of steps labelled."""
    cols: dict[str, list] = {k: [] for k in ("source", "method", "trajectory_id", "step_index", "label",
                                             "gold_label", "gold_first_error")}
    for method, result in methods.items():
        for t, labels in zip(trajectories, result.labels, strict=True):
            for j, label in enumerate(labels):
                for key, value in zip(cols, ("arith", method, t.trajectory_id, j, label, t.gold_labels[j],
                                             t.gold_first_error), strict=True):
                    cols[key].append(value)
    steps = pa.table(cols, schema=pa.schema([
        ("source", pa.string()), ("method", pa.string()), ("trajectory_id", pa.string()), ("step_index", pa.int32()),
        ("label", pa.float64()), ("gold_label", pa.float64()), ("gold_first_error", pa.int32()),
    ]))
    con = duckdb.connect()
    con.register("steps", steps)
    cur = con.execute(GOLD_SQL.format(labels=METHOD_LABELS))
    names = [d[0] for d in cur.description]
    rows = {r["method"]: r for r in (dict(zip(names, row, strict=True)) for row in cur.fetchall())}
    labelled = dict(con.execute("SELECT method, avg(CAST(label IS NOT NULL AS DOUBLE)) FROM steps GROUP BY 1").fetchall())
    for method, row in rows.items():
        row["labelled"] = labelled.get(method)
    return rows


def calibrate_on_gold(trajectories: Sequence[StudyTrajectory], view: NoisyView, size: int) -> tuple[float, float] | None:
    """(rho0, rho1) from the first ``size`` gold trajectories (id order) and their noisy verdicts."""
    pairs = [(1.0 if c else 0.0, t.gold_outcome) for t, c in zip(trajectories, view.outcome_correct, strict=True)
             if c is not None and t.gold_outcome is not None][:size]
    try:
        cal = estimate_calibration(pairs)
    except ValueError:
        return None
    if cal.rho0 + cal.rho1 >= 1:
        return None
    return cal.rho0, cal.rho1


@dataclass(frozen=True)
class StudyConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    """Channel seeds; every cell is repeated once per seed."""
    calibration_size: int = 50
    """Gold trajectories the calibrated noise-aware method may look at."""
    rollouts_per_step: int = 8
    """N of the run (the rollouts sampled per step boundary)."""
    channels: tuple[Channel, ...] = field(default_factory=lambda: tuple(default_channels()))


def sweep(trajectories: Sequence[StudyTrajectory], config: StudyConfig) -> Iterable[dict]:
    """One row per (channel, seed, method)."""
    for channel in config.channels:
        for seed in config.seeds:
            view = noisy_view(trajectories, channel.config(seed))
            calibration = calibrate_on_gold(trajectories, view, config.calibration_size)
            methods = label_methods(trajectories, view, channel, calibration, config.rollouts_per_step)
            metrics = score(trajectories, methods)
            labelled_steps = sum(t.num_steps for t in trajectories)
            for method in METHODS:
                m = metrics.get(method, {})
                spent = methods[method].rollouts_spent
                yield {
                    **asdict(channel), "channel": channel.name, "seed": seed, "method": method,
                    "youden_j": view.youden_j, "tpr": view.tpr, "fpr": view.fpr,
                    "step_accuracy": m.get("step_accuracy"), "processbench_f1": m.get("processbench_f1"),
                    "acc_erroneous": m.get("acc_erroneous"), "acc_correct": m.get("acc_correct"),
                    "error_precision": m.get("error_precision"), "error_recall": m.get("error_recall"),
                    "labelled": m.get("labelled"), "kept": m.get("kept"),
                    "rollouts": spent, "rollouts_per_step": spent / labelled_steps if labelled_steps else None,
                    "calibrated_rho0": None if calibration is None else calibration[0],
                    "calibrated_rho1": None if calibration is None else calibration[1],
                }


__all__ = ["Channel", "METHODS", "METHOD_NOTES", "StudyConfig", "StudyTrajectory", "default_channels", "label_methods",
           "load_run", "noisy_view", "score", "sweep"]
