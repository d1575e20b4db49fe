"""The sections of a run's report: each one a DuckDB query over the run's views and a figure.

Every section is always on the page; where the run has nothing for it (no dead letters, no judge,
no gold) the section says so instead of a figure, so a reader knows it was looked at.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import duckdb

from prmflow.report.browser import trajectory_browser
from prmflow.report.page import Section, png_data_uri, table_html
from prmflow.report.quality import label_quality

MAX_STEP_INDEX = 15  # MC value by step index: later steps are rare and only add noise to the figure


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    # labels come from the data (source names, methods): a '$' in one must print as a '$', not start
    # mathtext (an unbalanced one raised ValueError and lost the whole report)
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    cur = con.execute(sql)
    return [d[0] for d in cur.description], cur.fetchall()


def _fig(width: float = 6.4, height: float = 3.4):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.3)
    return fig, ax


def summary(con, manifest: dict) -> Section:
    s = Section("summary", "Run summary and reconciliation")
    config = manifest.get("config", {})
    counts = manifest.get("counts", {})
    outcome = config.get("outcome") or {}
    rows = [("name", config.get("name")), ("outcome labeler", outcome.get("labeler")),
            ("verifier noise (outcome.noise)", outcome.get("noise") or "none"),
            ("schema version", manifest.get("prmflow_schema_version")),
            ("wall seconds", manifest.get("timings", {}).get("wall_seconds"))]
    for table in ("problems", "trajectories", "steps", "start_states", "rollouts", "dead_letters"):
        try:
            rows.append((f"{table} rows", con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))
        except duckdb.Error:
            pass
    engine = counts.get("engine") or {}
    for key in ("requests", "generated_tokens", "rollout_generated_tokens", "failures"):
        if key in engine:
            rows.append((f"engine {key.replace('_', ' ')}", engine[key]))
    s.tables.append(table_html(["", "value"], rows))
    rec = manifest.get("reconciliation") or {}
    ok = rec.get("ok")
    verdict = '<span class="ok">counts reconcile</span>' if ok else '<span class="bad">counts do NOT reconcile</span>'
    s.notes.append(verdict if ok is not None else "no reconciliation recorded")
    checks = rec.get("checks") or {}
    s.tables.append(table_html(["check", "left", "right", "ok"],
                               [(name, c.get("left"), c.get("right"), "yes" if c.get("ok") else "NO")
                                for name, c in checks.items()]))
    if "calibration" in manifest:
        cal = manifest["calibration"]
        s.notes.append(f"verifier calibration (prmflow calibrate): rho0 = {cal['rho0']:.3f}, rho1 = {cal['rho1']:.3f}, "
                       f"Youden J = {cal['youden_j']:.3f} on {cal['rows']} gold trajectories")
    return s


def dead_letters(con, manifest: dict) -> Section:
    s = Section("dead-letters", "Dead letters by reason")
    cols, rows = _query(con, "SELECT stage, reason, count(*) AS rows FROM dead_letters GROUP BY ALL ORDER BY 3 DESC")
    if not rows:
        s.notes.append("no dead letters: every input row became output")
        return s
    s.tables.append(table_html(cols, rows))
    fig, ax = _fig(6.4, 0.5 + 0.35 * len(rows))
    ax.barh([f"{st}: {r}" for st, r, _ in rows][::-1], [n for *_, n in rows][::-1], color="#b3261e")
    ax.set_xlabel("rows")
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "dead letters by reason"))
    return s


def label_balance(con, manifest: dict) -> Section:
    s = Section("label-balance", "Label balance by source")
    cols, rows = _query(con, """
        SELECT source, method, count(*) FILTER (WHERE label = 1) AS positive,
               count(*) FILTER (WHERE label = 0) AS negative,
               count(*) FILTER (WHERE label IS NULL) AS unlabeled
        FROM steps GROUP BY ALL ORDER BY 1, 2""")
    s.tables.append(table_html(cols, rows))
    fig, ax = _fig(6.4, 1.0 + 0.45 * len(rows))
    names = [f"{src}/{m}" for src, m, *_ in rows]
    pos, neg, unl = ([r[i] for r in rows] for i in (2, 3, 4))
    ax.barh(names, pos, color="#1b7a3a", label="label 1")
    ax.barh(names, neg, left=pos, color="#b3261e", label="label 0")
    ax.barh(names, unl, left=[a + b for a, b in zip(pos, neg, strict=True)], color="#9aa3b2", label="unlabeled")
    ax.set_xlabel("steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "label balance by source"))
    return s


def steps_per_trajectory(con, manifest: dict) -> Section:
    s = Section("steps-per-trajectory", "Steps per trajectory")
    rows = con.execute("SELECT source, len(steps) FROM trajectories").fetchall()
    if not rows:
        s.notes.append("no trajectories")
        return s
    fig, ax = _fig()
    for source in sorted({r[0] for r in rows}):
        ax.hist([n for src, n in rows if src == source], bins=range(0, max(n for _, n in rows) + 2), alpha=0.7,
                label=source)
    ax.set_xlabel("steps")
    ax.set_ylabel("trajectories")
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "steps per trajectory"))
    cols, stats = _query(con, "SELECT source, count(*) AS trajectories, avg(len(steps)) AS mean_steps, "
                              "max(len(steps)) AS max_steps FROM trajectories GROUP BY 1 ORDER BY 1")
    s.tables.append(table_html(cols, stats))
    return s


def mc_by_step(con, manifest: dict) -> Section:
    s = Section("mc-by-step", "Monte-Carlo value by step index, split by outcome")
    rows = con.execute(f"""
        SELECT step_index, outcome >= 0.5 AS right, avg(mc_value), count(*) FROM steps
        WHERE mc_value IS NOT NULL AND outcome IS NOT NULL AND NOT is_last AND step_index <= {MAX_STEP_INDEX}
        GROUP BY ALL ORDER BY 1""").fetchall()
    if not rows:
        s.notes.append("no Monte-Carlo values in this run (no process section, or not method mc)")
        return s
    fig, ax = _fig()
    for right, colour, name in ((True, "#1b7a3a", "outcome right"), (False, "#b3261e", "outcome wrong")):
        pts = [(i, v) for i, r, v, _ in rows if r == right]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", color=colour, label=name)
    ax.set_xlabel("step index")
    ax.set_ylabel("mean MC value")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "MC value by step index"))
    s.notes.append("the last step is left out: its value is the trajectory's own outcome")
    return s


def first_error(con, manifest: dict) -> Section:
    s = Section("first-error", "First-error position per source")
    rows = con.execute("""
        SELECT source, method, step_index FROM steps WHERE first_error
        UNION ALL
        SELECT source, 'gold', gold_first_error FROM trajectories WHERE gold_first_error >= 0""").fetchall()
    if not rows:
        s.notes.append("no first errors: no method located one and no gold first error was imported")
        return s
    fig, ax = _fig()
    top = max(r[2] for r in rows) + 2
    for key in sorted({(r[0], r[1]) for r in rows}):
        ax.hist([i for src, m, i in rows if (src, m) == key], bins=range(0, top), alpha=0.55, label=f"{key[0]}/{key[1]}")
    ax.set_xlabel("first wrong step (0-based)")
    ax.set_ylabel("trajectories")
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "first-error position"))
    return s


def weights(con, manifest: dict) -> Section:
    s = Section("weights", "Consistency-weight distribution")
    rows = con.execute("SELECT weight FROM steps WHERE weight IS NOT NULL").fetchall()
    if not rows:
        s.notes.append("no consistency weights in this run (no consistency section)")
        return s
    fig, ax = _fig()
    ax.hist([w for (w,) in rows], bins=20, color="#2a4d8f")
    ax.set_xlabel("weight")
    ax.set_ylabel("steps")
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "consistency weights"))
    kept = sum(1 for (w,) in rows if w > 0) / len(rows)
    s.notes.append(f"{kept:.1%} of weighted steps have weight > 0")
    return s


def calibration(con, manifest: dict) -> Section:
    s = Section("calibration", "Calibration of MC values against gold")
    rows = con.execute("""
        SELECT least(floor(mc_value * 10), 9) / 10 + 0.05 AS bin, avg(gold_label), count(*) FROM steps
        WHERE mc_value IS NOT NULL AND gold_label IN (0, 1)
          AND (gold_first_error = -1 OR step_index <= gold_first_error)
        GROUP BY 1 ORDER BY 1""").fetchall()
    if not rows:
        s.notes.append("no steps with both an MC value and a gold label")
        return s
    fig, ax = _fig(5.2, 4.2)
    ax.plot([0, 1], [0, 1], color="#9aa3b2", linestyle="--", label="perfectly calibrated")
    ax.plot([b for b, _, _ in rows], [g for _, g, _ in rows], marker="o", color="#2a4d8f", label="MC value")
    ax.set_xlabel("MC value (bin centre)")
    ax.set_ylabel("fraction of steps right (gold)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "MC calibration"))
    s.tables.append(table_html(["bin centre", "gold right", "steps"], rows))
    return s


def methods_vs_gold(con, manifest: dict) -> Section:
    from prmflow.analysis.gold import gold_metrics

    s = Section("methods-vs-gold", "Methods against gold, side by side")
    cols, rows = gold_metrics(con)
    if not rows:
        s.notes.append("no gold in this run: nothing to score against")
        return s
    s.tables.append(table_html(cols, rows))
    fig, ax = _fig(6.4, 1.2 + 0.6 * len(rows))
    names = [f"{r[0]}/{r[1]}" for r in rows]
    f1, acc = cols.index("processbench_f1"), cols.index("step_accuracy")
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [r[f1] or 0 for r in rows], height=0.4, label="ProcessBench F1")
    ax.barh([i - 0.2 for i in y], [r[acc] or 0 for r in rows], height=0.4, label="step accuracy")
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "methods against gold"))
    return s


def cost(con, manifest: dict) -> Section:
    s = Section("cost", "Cost per labelled step")
    cols, rows = _query(con, """
        SELECT source, method, count(*) FILTER (WHERE label IS NOT NULL) AS labelled_steps,
               sum(coalesce(mc_rollouts, 0)) AS rollouts, sum(coalesce(rollout_tokens, 0)) AS rollout_tokens,
               sum(coalesce(mc_rollouts, 0)) / nullif(count(*) FILTER (WHERE label IS NOT NULL), 0) AS rollouts_per_step,
               sum(coalesce(rollout_tokens, 0)) / nullif(count(*) FILTER (WHERE label IS NOT NULL), 0) AS tokens_per_step
        FROM steps GROUP BY ALL ORDER BY 1, 2""")
    s.tables.append(table_html(cols, rows))
    if any(r[-1] for r in rows):
        fig, ax = _fig(6.4, 0.8 + 0.4 * len(rows))
        ax.barh([f"{r[0]}/{r[1]}" for r in rows], [r[-1] or 0 for r in rows], color="#8a5a00")
        ax.set_xlabel("rollout tokens per labelled step")
        fig.tight_layout()
        s.figures.append((png_data_uri(fig), "cost per labelled step"))
    return s


def judge(con, manifest: dict) -> Section:
    s = Section("judge", "Judge agreement")
    try:
        rows = con.execute("SELECT judge_agreement, consensus FROM trajectories WHERE judge_votes IS NOT NULL").fetchall()
    except duckdb.Error:
        rows = []
    if not rows:
        s.notes.append("no judge in this run (no judge section)")
        return s
    agreement = [a for a, _ in rows if a is not None]
    fig, ax = _fig()
    ax.hist(agreement, bins=10, range=(0, 1), color="#5a3d8a")
    ax.set_xlabel("fraction of judge votes equal to the plurality")
    ax.set_ylabel("trajectories")
    fig.tight_layout()
    s.figures.append((png_data_uri(fig), "judge self-agreement"))
    known = [c for _, c in rows if c is not None]
    if known:
        s.notes.append(f"judge and Monte-Carlo first errors agree (consensus) on {sum(known) / len(known):.1%} of "
                       f"{len(known)} trajectories where both are known")
    return s


RUN_SECTIONS: tuple[Callable[..., Section], ...] = (
    summary, label_quality, dead_letters, label_balance, steps_per_trajectory, mc_by_step, first_error, weights,
    calibration, methods_vs_gold, cost, judge, trajectory_browser,
)


def run_sections(con: duckdb.DuckDBPyConnection, manifest: dict) -> list[Section]:
    out = []
    for build in RUN_SECTIONS:
        try:
            out.append(build(con, manifest))
        except duckdb.Error as e:  # an older output without a column: the section says why it is empty
            name = build.__name__.replace("_", " ")
            out.append(Section(build.__name__.replace("_", "-"), name.capitalize(),
                               notes=[f"not available for this output: {html.escape(str(e).splitlines()[0])}"]))
    return out


__all__ = ["RUN_SECTIONS", "run_sections"]
