"""The report's trajectory browser: example trajectories step by step, with each step's Monte-Carlo
value, its label, its consistency weight and its gold label (or judge score), colour-coded, and a
switch that keeps only the trajectories where the label disagrees with gold or the judge.

The examples are chosen deterministically (by trajectory id): up to PER_KIND trajectories with a
disagreement and as many without. The page stays self-contained: the filter is a few lines of inline
script. Opening the page with ``#disagreements`` applies the filter at load (links, and the
headless-browser test that checks it)."""

from __future__ import annotations

import html

import duckdb

from prmflow.report.page import Section, fmt

PER_KIND = 15
STEP_CHARS = 240

# a step disagrees when its label and the truth (gold, else the judge) fall on different sides of 0.5
QUERY = f"""
WITH per_step AS (
    SELECT *, CASE
        WHEN label IS NULL THEN false
        WHEN gold_label IS NOT NULL THEN (label >= 0.5) <> (gold_label >= 0.5)
        WHEN judge_score IS NOT NULL THEN (label >= 0.5) <> (judge_score >= 0.5)
        ELSE false END AS disagree
    FROM steps),
per_trajectory AS (
    SELECT trajectory_id, bool_or(disagree) AS disagree FROM per_step GROUP BY trajectory_id),
picked AS (
    SELECT trajectory_id, disagree,
           row_number() OVER (PARTITION BY disagree ORDER BY trajectory_id) AS n
    FROM per_trajectory)
SELECT s.trajectory_id, p.disagree AS trajectory_disagrees, t.prompt, t.outcome, t.gold_outcome,
       s.step_index, s.step_text, s.mc_value, s.label, s.weight, s.gold_label, s.judge_score, s.method,
       s.disagree
FROM picked p JOIN per_step s USING (trajectory_id) JOIN trajectories t USING (trajectory_id)
WHERE p.n <= {PER_KIND}
ORDER BY p.disagree DESC, s.trajectory_id, s.step_index"""

STYLE = """
#trajectory-browser table.browser td { text-align: left; vertical-align: top; }
#trajectory-browser table.browser td.num { text-align: right; white-space: nowrap; }
#trajectory-browser tr.head td { background: #eef1f7; font-weight: 600; }
#trajectory-browser td.good { background: #d9f2df; } #trajectory-browser td.badv { background: #f8d7d5; }
#trajectory-browser tr.disagree td:first-child { border-left: 4px solid #e08a00; }
#trajectory-browser pre { white-space: pre-wrap; margin: 0; font: 12px/1.35 ui-monospace, monospace; }
"""

SCRIPT = """
(function () {
  var box = document.getElementById('only-disagreements');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#trajectory-browser tr[data-trajectory]'));
  function apply() {
    var only = box.checked, visible = 0;
    rows.forEach(function (r) {
      var show = !only || r.getAttribute('data-disagrees') === '1';
      r.style.display = show ? '' : 'none';
      if (show) { visible += 1; }
    });
    var body = document.body;
    body.setAttribute('data-browser-rows', String(rows.length));
    body.setAttribute('data-browser-visible', String(visible));
    body.setAttribute('data-browser-filter', only ? 'disagreements' : 'all');
  }
  box.addEventListener('change', apply);
  if (location.hash === '#disagreements') { box.checked = true; }
  apply();
})();
"""


def _value_class(value) -> str:
    if value is None:
        return "num"
    return "num good" if value >= 0.5 else "num badv"


def _mc_cell(value) -> str:
    if value is None:
        return '<td class="num">–</td>'
    hue = int(120 * max(0.0, min(1.0, value)))  # red 0 .. green 1
    return f'<td class="num" style="background: hsl({hue}, 65%, 85%)">{fmt(value)}</td>'


def trajectory_browser(con: duckdb.DuckDBPyConnection, manifest: dict) -> Section:
    s = Section("trajectory-browser", "Trajectory browser: steps with their MC value, label, weight and gold")
    rows = con.execute(QUERY).fetchall()
    if not rows:
        s.notes.append("no labeled steps in this run")
        return s
    disagreeing = len({r[0] for r in rows if r[1]})
    s.notes.append(
        f"{len({r[0] for r in rows})} example trajectories (up to {PER_KIND} where a step's label disagrees with its "
        f"gold label, or with the judge where there is no gold, and up to {PER_KIND} others, by trajectory id); "
        f"{disagreeing} disagree. Green: right (>= 0.5), red: wrong; the MC value is shaded from red (0) to green (1); "
        "an orange edge marks a disagreeing step."
        + ("" if disagreeing else " No step here has a gold label or a judge score that disagrees with its label."))
    s.notes.append('<label><input type="checkbox" id="only-disagreements"> only trajectories that disagree</label>')
    out = [f"<style>{STYLE}</style>", '<table class="browser"><thead><tr><th>step</th><th>text</th><th>MC value</th>'
           "<th>label</th><th>weight</th><th>gold</th><th>judge</th><th>method</th></tr></thead><tbody>"]
    current = None
    for (tid, t_dis, prompt, outcome, gold_outcome, index, text, mc, label, weight, gold, judge, method,
         step_dis) in rows:
        attrs = f'data-trajectory="{html.escape(tid)}" data-disagrees="{1 if t_dis else 0}"'
        if tid != current:
            current = tid
            head = (f"trajectory {html.escape(tid[:12])} · outcome {fmt(outcome)} · gold outcome {fmt(gold_outcome)}"
                    f" · problem: {html.escape(prompt or '')[:STEP_CHARS]}")
            out.append(f'<tr class="head" {attrs}><td colspan="8">{head}</td></tr>')
        shown = text if len(text or "") <= STEP_CHARS else text[:STEP_CHARS] + "…"
        out.append(
            f'<tr class="step{" disagree" if step_dis else ""}" {attrs}><td class="num">{index}</td>'
            f"<td><pre>{html.escape(shown or '')}</pre></td>{_mc_cell(mc)}"
            f'<td class="{_value_class(label)}">{fmt(label)}</td><td class="num">{fmt(weight)}</td>'
            f'<td class="{_value_class(gold)}">{fmt(gold)}</td><td class="{_value_class(judge)}">{fmt(judge)}</td>'
            f"<td>{html.escape(method or '')}</td></tr>")
    out.append(f"</tbody></table><script>{SCRIPT}</script>")
    s.tables.append("".join(out))
    return s


__all__ = ["PER_KIND", "QUERY", "trajectory_browser"]
