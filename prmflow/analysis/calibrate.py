"""``prmflow calibrate RUN_DIR``: the outcome verifier's error rates, measured on a gold subset.

A run's trajectories carry the verifier's verdict (``outcome``) and, where the source has it, the
truth (``gold_outcome``: arith's checker, ProcessBench, PRM800K). On a small calibration subset of
them, the verifier's false-positive rate ``rho0 = P(outcome right | gold wrong)`` and false-negative
rate ``rho1 = P(outcome wrong | gold right)`` are counted, each with a Wilson 95% interval, and the
estimate is written into the run's manifest (``calibration``), where ``process.noise_aware:
{calibration: RUN_DIR}`` reads it for the next run's de-biased labels.

The subset is the first ``limit`` gold trajectories in trajectory-id order: ids are content hashes,
so this is a fixed pseudo-random sample that a rerun reproduces.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from prmflow.labelers.outcome import CORRECT_AT
from prmflow.safeio import atomic_write_text

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Calibration:
    rho0: float
    """False-positive rate: P(verdict right | gold wrong)."""
    rho1: float
    """False-negative rate: P(verdict wrong | gold right)."""
    rho0_interval: tuple[float, float]
    """Wilson 95% interval of rho0."""
    rho1_interval: tuple[float, float]
    """Wilson 95% interval of rho1."""
    gold_wrong: int
    """Calibration trajectories whose gold outcome is wrong (rho0's denominator)."""
    gold_right: int
    """Calibration trajectories whose gold outcome is right (rho1's denominator)."""
    false_positives: int
    false_negatives: int
    youden_j: float
    """TPR - FPR = 1 - rho0 - rho1: how much signal the verifier carries (0: none)."""
    rows: int
    """Trajectories used (the calibration subset)."""
    available: int
    """Trajectories with both a verdict and a gold outcome."""


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(pairs: list[tuple[float, float]]) -> Calibration:
    """The estimate from (verdict, gold) pairs. Raises ValueError when a class is missing: an error
    rate of a class with no example is unknown, not 0."""
    right = [v >= CORRECT_AT for v, g in pairs if g >= CORRECT_AT]
    wrong = [v >= CORRECT_AT for v, g in pairs if g < CORRECT_AT]
    if not right or not wrong:
        raise ValueError(f"calibration needs gold-right and gold-wrong trajectories, got {len(right)} right and "
                         f"{len(wrong)} wrong; use a larger --limit or a run with more gold")
    fp, fn = sum(wrong), sum(not r for r in right)
    rho0, rho1 = fp / len(wrong), fn / len(right)
    return Calibration(rho0, rho1, wilson(fp, len(wrong)), wilson(fn, len(right)), len(wrong), len(right), fp, fn,
                       1 - rho0 - rho1, len(pairs), len(pairs))


def calibrate(run_dir: str, limit: int | None = None, partial: bool = False) -> Calibration:
    from prmflow.analysis.views import connect

    con = connect(run_dir, partial=partial)
    sql = """SELECT outcome, gold_outcome FROM trajectories
             WHERE outcome IS NOT NULL AND gold_outcome IS NOT NULL ORDER BY trajectory_id"""
    pairs = [(float(v), float(g)) for v, g in con.execute(sql).fetchall()]
    available = len(pairs)
    if limit is not None:
        pairs = pairs[:limit]
    result = estimate(pairs)
    return Calibration(**{**asdict(result), "available": available})


def write_to_manifest(run_dir: str, calibration: Calibration, limit: int | None) -> Path:
    """Add ``calibration`` to RUN_DIR/manifest.json (atomically: a temp file, then a rename)."""
    path = Path(run_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["calibration"] = {**asdict(calibration), "limit": limit, "method": "gold trajectories, Wilson 95%"}
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")  # no temp file stays
    return path


DESCRIPTION = "Estimate the outcome verifier's (rho0, rho1) on gold trajectories and write it into the run's manifest."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="DIR", help="a finished run's output directory with gold trajectories")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many gold trajectories")
    parser.add_argument("--partial", action="store_true", help="read an output without _SUCCESS")
    parser.add_argument("--dry-run", action="store_true", help="print the estimate, leave the manifest as it is")


def main(args: list[str]) -> int:
    from prmflow.core.cliparse import parser as make_parser

    parser = make_parser("prmflow calibrate", DESCRIPTION, add_arguments)
    ns = parser.parse_args(args)
    if ns.limit is not None and ns.limit < 2:
        parser.error(f"--limit must be >= 2, got {ns.limit}")
    try:
        cal = calibrate(ns.run_dir, ns.limit, ns.partial)
    except (ValueError, duckdb.Error) as e:
        print(f"prmflow calibrate: {e}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(cal), indent=2))
    if not ns.dry_run:
        try:
            path = write_to_manifest(ns.run_dir, cal, ns.limit)
        except OSError as e:  # a full disk: the manifest is as it was
            print(f"prmflow calibrate: cannot write the manifest of {ns.run_dir}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"written to {path} (use process.noise_aware: {{calibration: {ns.run_dir}}})")
    return 0


__all__ = ["Calibration", "calibrate", "estimate", "wilson", "write_to_manifest"]
