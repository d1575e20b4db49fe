"""The report's trajectory browser in headless Chromium: the example rows are on the page with their
step values, and the disagreement filter (the same function the checkbox calls, applied at load by
``#disagreements``) leaves exactly the trajectories whose labels disagree with gold or the judge."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict

import pyarrow.parquet as pq
from test_report import run_dir  # noqa: F401 - the fake-policy run with gold, a judge and MC labels

from prmflow.report.browser import PER_KIND
from prmflow.report.cli import build


def _expected(run_dir) -> tuple[set, set]:  # noqa: F811
    """(disagreeing, agreeing) trajectory ids, recomputed from the steps table in plain Python."""
    verdict = defaultdict(bool)
    for s in pq.read_table(run_dir / "steps").to_pylist():
        truth = s["gold_label"] if s["gold_label"] is not None else s["judge_score"]
        wrong = s["label"] is not None and truth is not None and (s["label"] >= 0.5) != (truth >= 0.5)
        verdict[s["trajectory_id"]] |= wrong
    yes = {t for t, v in verdict.items() if v}
    return yes, set(verdict) - yes


def test_the_page_holds_the_chosen_trajectories(run_dir):  # noqa: F811
    text = build(str(run_dir))
    yes, no = _expected(run_dir)
    shown = dict(re.findall(r'<tr class="head" data-trajectory="([0-9a-f]+)" data-disagrees="([01])"', text))
    assert {t for t, d in shown.items() if d == "1"} == set(sorted(yes)[:PER_KIND])
    assert {t for t, d in shown.items() if d == "0"} == set(sorted(no)[:PER_KIND])
    assert 0 < len(yes) and 0 < len(no)
    assert 'id="only-disagreements"' in text and "hsl(" in text  # the switch, and MC values shaded


def _dom(url: str) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian chromium is needed for this test: `make setup` installs it (apt-get install chromium)"
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout


def _body(dom: str, name: str) -> str:
    found = re.search(rf'<body[^>]*\s{name}="([^"]*)"', dom)
    assert found, f"{name} not set: the browser's script did not run"
    return found.group(1)


def test_the_filter_works_in_chromium(run_dir, tmp_path):  # noqa: F811
    out = tmp_path / "report.html"
    text = build(str(run_dir))
    out.write_text(text, encoding="utf-8")
    rows = len(re.findall(r"<tr class=\"(?:head|step[^\"]*)\" data-trajectory=", text))
    disagreeing = len(re.findall(r"<tr class=\"(?:head|step[^\"]*)\" data-trajectory=\"[0-9a-f]+\" data-disagrees=\"1\"",
                                 text))
    assert 0 < disagreeing < rows
    everything = _dom(out.as_uri())
    assert (_body(everything, "data-browser-filter"), _body(everything, "data-browser-rows")) == ("all", str(rows))
    assert _body(everything, "data-browser-visible") == str(rows)
    filtered = _dom(out.as_uri() + "#disagreements")
    assert _body(filtered, "data-browser-filter") == "disagreements"
    assert _body(filtered, "data-browser-visible") == str(disagreeing)
    # the rows the browser hid are exactly the agreeing ones
    hidden = re.findall(r'data-disagrees="([01])" style="display: none;"', filtered)
    assert hidden and set(hidden) == {"0"} and len(hidden) == rows - disagreeing
