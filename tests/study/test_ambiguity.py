"""The ambiguity sweep on constructed trajectories whose prefix values and gold are known."""

import pyarrow as pa
import pytest

from prmflow.study.ambiguity import (
    METHODS,
    Channel,
    StudyConfig,
    StudyTrajectory,
    default_channels,
    label_methods,
    noisy_view,
    score,
    sweep,
)
from prmflow.study.cli import markdown

N = 8


def _trajectories(count: int = 60) -> list[StudyTrajectory]:
    """Trajectory i has 5 steps and first error e = i % 6 - 1 (-1: none); a prefix before the first
    error succeeds in 6 of 8 rollouts (the clean verifier is exact), a prefix at or after it in none."""
    out = []
    for i in range(count):
        n, e = 5, i % 6 - 1
        gold = tuple(1.0 if e == -1 or j < e else 0.0 for j in range(n))
        rollouts = {
            k: [(f"t{i}/k{k}/r{r}", 1.0 if (e == -1 or k <= e) and r < 6 else 0.0) for r in range(N)]
            for k in range(1, n)
        }
        outcome = 1.0 if e == -1 else 0.0
        out.append(StudyTrajectory(f"t{i:03d}", n, outcome, outcome, e, gold, rollouts))
    return out


def test_clean_verifier_recovers_exact_truth():
    ts = _trajectories()
    clean = Channel("p=0", "clean", 0.0, 0.0)
    view = noisy_view(ts, clean.config(0))
    assert view.youden_j == 1.0
    metrics = score(ts, label_methods(ts, view, clean, (0.0, 0.0), N))
    for method in ("mc-hard", "noise-aware", "binary-search", "rel-effective"):
        assert metrics[method]["step_accuracy"] == 1.0 and metrics[method]["processbench_f1"] == 1.0, method


def test_noise_lowers_j_as_configured_and_noise_aware_beats_any_success():
    ts = _trajectories(300)
    channel = Channel("rho0=0.1", "false-positive", 0.1, 0.0)
    view = noisy_view(ts, channel.config(3))
    assert view.fpr == pytest.approx(0.1, abs=0.03) and view.tpr == 1.0
    metrics = score(ts, label_methods(ts, view, channel, (0.1, 0.0), N))
    assert metrics["noise-aware"]["processbench_f1"] > metrics["mc-hard"]["processbench_f1"]
    assert metrics["noise-aware"]["step_accuracy"] > metrics["mc-hard"]["step_accuracy"]


def test_binary_search_spends_fewer_rollouts():
    ts = _trajectories()
    clean = Channel("p=0", "clean", 0.0, 0.0)
    methods = label_methods(ts, noisy_view(ts, clean.config(0)), clean, None, N)
    assert methods["binary-search"].rollouts_spent < methods["mc-hard"].rollouts_spent
    assert all(label is None for labels in methods["noise-aware-calibrated"].labels for label in labels)


def test_sweep_is_reproducible_and_complete(tmp_path):
    ts = _trajectories()
    config = StudyConfig(seeds=(0, 1), calibration_size=30, rollouts_per_step=N, channels=tuple(default_channels()))
    rows = list(sweep(ts, config))
    assert rows == list(sweep(ts, config))
    assert len(rows) == len(config.channels) * 2 * len(METHODS)
    # seeds differ under noise, not without it
    by = {(r["channel"], r["seed"], r["method"]): r["step_accuracy"] for r in rows}
    assert by[("p=0", 0, "mc-hard")] == by[("p=0", 1, "mc-hard")]
    assert any(by[("p=0.2", 0, m)] != by[("p=0.2", 1, m)] for m in METHODS)
    text = markdown(rows, {"run_dir": "x", "trajectories": len(ts), "rollouts": 1, "rollouts_per_step": N,
                           "seeds": [0, 1], "not_included": ["the judge"]})
    for method in METHODS:
        assert f"| {method} |" in text
    assert "| p=0.4 |" in text and "| rho1=0.3 |" in text
    from prmflow.study.plots import study_plots

    paths = study_plots(pa.Table.from_pylist(rows), tmp_path / "plots")
    assert len(paths) == 5 and all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
