"""`prmflow report` on a fake-policy run with imported gold, a noisy verifier, a judge and a dead
letter, rendered in headless Chromium: every section present, every figure loaded, nothing fetched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import duckdb
import pytest
import yaml

from prmflow.pipelines.label import run
from prmflow.report.cli import build
from prmflow.report.cli import main as report_main
from prmflow.report.run import RUN_SECTIONS
from prmflow.samplers.fake_backend import fake_answer

FAKE = {"backend": "fake", "model": "fake"}
RUN_KEYS = [f.__name__.replace("_", "-") for f in RUN_SECTIONS]


def fake_solution(numbers: list[int], error_at: int) -> tuple[str, list[float]]:
    """The fake policy's solution format, slipping by one at step ``error_at`` (-1: never)."""
    lines, total, labels = [], 0, []
    for i, n in enumerate(numbers):
        new = total + n + (1 if i == error_at else 0)
        lines.append(f"Step {i + 1}: {total} + {n} = {new}")
        labels.append(0.0 if error_at != -1 and i >= error_at else 1.0)
        total = new
    # the answer line is a step of its own, wrong iff a step before it slipped
    return "\n".join(lines) + f"\nThe answer is {total}.", [*labels, labels[-1]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    rows = []
    for i in range(12):
        q = f"Add {i}, {i + 2} and {2 * i + 1}."
        error_at = i % 4 - 1
        text, labels = fake_solution([i, i + 2, 2 * i + 1], error_at)
        rows.append({"q": q, "a": fake_answer(q), "s": text, "ge": error_at, "gl": labels,
                     "go": 1.0 if error_at == -1 else 0.0})
    rows.append({"a": "1"})  # no prompt: a dead letter
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "report-fixture",
        # the imported solutions (with gold) are labeled beside the samples: asked for, since the run samples
        "inputs": [{"name": "add", "format": "jsonl", "path": str(tmp / "p.jsonl"), "import_solutions": True, "fields": {
            "prompt": "q", "reference_answer": "a", "solution": "s", "gold_first_error": "ge",
            "gold_step_labels": "gl", "gold_outcome": "go"}}],
        "sampler": {**FAKE, "engine_kwargs": {"step_error": 0.2}},
        "sampling": {"n": 2, "template": "question-answer", "batch_size": 8},
        "outcome": {"labeler": "exact", "noise": {"p": 0.1, "seed": 3}},
        "process": {"method": "mc", "rollouts": 4, "batch_trajectories": 8},
        "judge": {"sampler": {**FAKE, "engine_kwargs": {"judge_error": 0.2}}, "votes": 3, "temperature": 1.0},
        "consistency": {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"},
        "output": {"num_shards": 1},
    }
    (tmp / "c.yaml").write_text(yaml.safe_dump(config))
    manifest = run([str(tmp / "c.yaml"), "--output", str(tmp / "out")])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    return tmp / "out"


def test_noisy_verifier_records_clean_verdicts(run_dir):
    con = duckdb.connect()
    for table in ("trajectories", "rollouts"):
        total, with_clean, flipped = con.sql(
            f"SELECT count(*), count(clean_outcome), count(*) FILTER (WHERE (outcome >= 0.5) <> (clean_outcome >= 0.5)) "
            f"FROM read_parquet('{run_dir}/{table}/*.parquet') WHERE outcome IS NOT NULL").fetchall()[0]
        assert with_clean == total > 0, table
        if table == "rollouts":  # p = 0.1 over a few hundred verdicts: some flipped, far from all
            assert 0 < flipped < 0.25 * total, (flipped, total)


def test_page_has_every_section_and_no_outside_reference(run_dir):
    text = build(str(run_dir))
    for key in RUN_KEYS:
        assert f'<section id="{key}">' in text, key
    assert "no judge in this run" not in text and "no gold in this run" not in text
    assert "no dead letters" not in text  # the fixture has one
    # nothing but data: URIs as sources, no links out
    assert not re.search(r'(?:src|href)="(?!data:|#)', text)
    assert "http://" not in text and "https://" not in text


def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian chromium is needed for this test: `make setup` installs it (apt-get install chromium)"
    out = tmp_path / "report.html"
    assert report_main([str(run_dir), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    figures = text.count("<img ")
    assert figures >= 9
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1280,7000", f"--screenshot={shot}", out.as_uri()], check=True,
                   capture_output=True, timeout=180)
    png = shot.read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 100_000  # a blank page compresses to a few KB
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", out.as_uri()], check=True,
                         capture_output=True, text=True, timeout=180).stdout
    for key in RUN_KEYS:
        assert f'id="{key}"' in dom, key
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-figures="{figures}"' in body and f'data-figures-loaded="{figures}"' in body, body
    assert 'data-fetched="[]"' in body, body
    keep = run_dir.parent / "report.png"  # for a person to look at
    keep.write_bytes(png)


def test_calibrate_measures_the_configured_noise_and_writes_the_manifest(run_dir, tmp_path, capsys):
    from prmflow.analysis.calibrate import main as calibrate_main
    from prmflow.labelers.process.noise_aware import NoiseAwareConfig

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with pytest.raises(SystemExit):
        calibrate_main([str(copy), "--limit", "1"])
    assert calibrate_main([str(copy)]) == 0
    cal = json.loads((copy / "manifest.json").read_text())["calibration"]
    # the imported gold trajectories went through the p = 0.1 channel: both rates inside their intervals
    assert cal["rows"] == 12 and cal["rho0_interval"][0] <= 0.1 <= cal["rho0_interval"][1]
    assert cal["rho1_interval"][0] <= 0.1 <= cal["rho1_interval"][1]
    aware = NoiseAwareConfig(calibration=str(copy))
    assert (aware.rho0, aware.rho1) == (cal["rho0"], cal["rho1"])
    assert "verifier calibration" in build(str(copy))


def test_study_from_a_run_and_its_report(run_dir, tmp_path):
    from prmflow.study.ambiguity import METHODS
    from prmflow.study.cli import main as study_main

    out = tmp_path / "study"
    assert study_main(["ambiguity", "--from", str(run_dir), "--out", str(out), "--seeds", "2",
                       "--calibration-size", "12"]) == 0
    rows = duckdb.connect().sql(f"SELECT channel, seed, method, rollouts_per_step FROM '{out}/ambiguity.parquet'").fetchall()
    assert len(rows) == 14 * 2 * len(METHODS)
    assert {r[3] for r in rows if r[2] == "all-good"} == {0.0}
    meta = json.loads((out / "study.json").read_text())
    assert meta["trajectories"] == 12 and meta["rollouts_per_step"] == 4  # the imported gold trajectories
    text = build(str(out))
    for key in ("study", "sweep-plots", "sweep-tables", *RUN_KEYS):
        assert f'<section id="{key}">' in text, key
    assert text.count('<img src="data:image/png;base64,') >= 5 + 9
    with pytest.raises(SystemExit):
        study_main(["ambiguity", "--seeds", "0"])
