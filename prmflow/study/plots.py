"""The ambiguity study's figures (matplotlib, Agg: no display, PNG files)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('plots need matplotlib: pip install "prmflow[report]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, sd


def _series(rows: list[dict], kinds: tuple[str, ...], x: str, y: str) -> dict[str, list[tuple[float, float, float]]]:
    """method -> [(x mean, y mean, y sd)] over the channels of ``kinds``, sorted by x."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["kind"] in kinds and r[y] is not None and r[x] is not None:
            cells.setdefault((r["method"], r["channel"]), []).append(r)
    out: dict[str, list[tuple[float, float, float]]] = {}
    for (method, _), rs in cells.items():
        ym, ysd = _mean_sd([r[y] for r in rs])
        out.setdefault(method, []).append((_mean_sd([r[x] for r in rs])[0], ym, ysd))
    return {m: sorted(v) for m, v in sorted(out.items())}


PANELS = (
    ("accuracy_vs_j.png", ("clean", "symmetric"), "youden_j", "step_accuracy",
     "Step-label accuracy vs verifier Youden J (symmetric noise)"),
    ("f1_vs_j.png", ("clean", "symmetric"), "youden_j", "processbench_f1",
     "ProcessBench F1 vs verifier Youden J (symmetric noise)"),
    ("f1_vs_false_positive_rate.png", ("clean", "false-positive"), "rho0", "processbench_f1",
     "ProcessBench F1 vs false-positive rate rho0 (rho1 = 0)"),
    ("f1_vs_false_negative_rate.png", ("clean", "false-negative"), "rho1", "processbench_f1",
     "ProcessBench F1 vs false-negative rate rho1 (rho0 = 0)"),
)


def study_plots(table: pa.Table, out_dir: Path) -> list[Path]:
    """One PNG per panel plus the rollout cost per method; returns their paths."""
    plt = _pyplot()
    rows = table.to_pylist()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, kinds, x, y, title in PANELS:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
        for method, points in _series(rows, kinds, x, y).items():
            xs, ys, sds = zip(*points, strict=True)
            ax.errorbar(xs, ys, yerr=sds, marker="o", markersize=3, capsize=2, label=method)
        ax.set_xlabel({"youden_j": "Youden J = TPR - FPR (measured)", "rho0": "rho0", "rho1": "rho1"}[x])
        ax.set_ylabel(y.replace("_", " "))
        if x == "youden_j":
            ax.invert_xaxis()  # noise grows to the right
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out_dir / name)
        plt.close(fig)
        paths.append(out_dir / name)
    clean = {r["method"]: r["rollouts_per_step"] for r in rows if r["kind"] == "clean"}
    fig, ax = plt.subplots(figsize=(7.5, 3.5), dpi=100)
    ax.barh(list(clean), list(clean.values()))
    ax.set_xlabel("rollouts per step (clean verifier)")
    ax.set_title("Rollouts spent per labelled step", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "rollouts.png")
    plt.close(fig)
    paths.append(out_dir / "rollouts.png")
    return paths


__all__ = ["PANELS", "study_plots"]
