"""Label quality without gold in ``prmflow inspect``: pass@k per source, problems never solved, the
method's first-error histogram, samples and rollouts cut at max_tokens, and the warnings for
degenerate Monte-Carlo labels. Real Beam runs of the fake policy; the figures are checked against the
tables recomputed in plain Python."""

from __future__ import annotations

import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest
import yaml

from prmflow.analysis import quality
from prmflow.analysis.views import connect
from prmflow.cli import main
from prmflow.pipelines.label import run


def _run(tmp_path, name: str, step_error: float, max_tokens: int = 256):
    rows = [{"q": f"Add {i}, {i + 7} and {3 * i}.", "a": str(i + i + 7 + 3 * i)} for i in range(8)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": name,
        "inputs": [{"name": "add", "format": "jsonl", "path": str(tmp_path / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": step_error}},
        "sampling": {"n": 3, "template": "question-answer", "max_tokens": max_tokens},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 2, "max_tokens": 4},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / name
    assert run([str(path), "--output", str(out)])["reconciliation"]["ok"]
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("q"), "mixed", 0.3)


def test_pass_at_k_and_never_solved_match_the_tables(mixed):
    table = pq.read_table(mixed / "trajectories").to_pylist()
    by_problem = defaultdict(list)
    for t in table:
        by_problem[t["problem_id"]].append(t["outcome"] is not None and t["outcome"] >= 0.5)
    [row] = [dict(zip([d[0] for d in c.description], r, strict=True))
             for c in [connect(str(mixed)).execute(quality.PASS_AT_K)] for r in c.fetchall()]
    assert row["problems"] == len(by_problem) == 8 and row["k"] == 3
    assert row["pass_at_1"] == pytest.approx(sum(sum(v) for v in by_problem.values()) / len(table))
    assert row["pass_at_k"] == pytest.approx(sum(any(v) for v in by_problem.values()) / 8)
    assert row["never_solved"] == pytest.approx(sum(not any(v) for v in by_problem.values()) / 8)


def test_first_error_histogram_counts_every_labeled_trajectory(mixed):
    rows = connect(str(mixed)).execute(quality.FIRST_ERROR).fetchall()
    assert sum(r[2] for r in rows) == 24 and {r[0] for r in rows} == {"mc"}
    steps = pq.read_table(mixed / "steps").to_pylist()
    firsts = defaultdict(lambda: -1)
    for s in sorted(steps, key=lambda s: -s["step_index"]):
        if s["first_error"]:
            firsts[s["trajectory_id"]] = s["step_index"]
    expected = defaultdict(int)
    for t in {s["trajectory_id"] for s in steps}:
        expected[firsts[t]] += 1
    assert {r[1]: r[2] for r in rows} == dict(expected)


def test_inspect_warns_when_mc_labels_are_degenerate(tmp_path, capsys):
    out = _run(tmp_path, "hopeless", 1.0, max_tokens=10)  # every sample slips, many are cut at max_tokens
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "WARNING: add: the policy solves 0.0% of its samples (100% of problems never)" in text
    assert "Monte-Carlo step labels are about the outcome labels" in text
    assert "stopped at sampling.max_tokens" in text and "stopped at process.max_tokens" in text
    assert "Policy pass rate without gold" in text and "first-error position" in text


def test_no_warning_for_a_policy_in_the_useful_band(mixed, capsys):
    rate = connect(str(mixed)).execute("SELECT avg((outcome >= 0.5)::INT) FROM trajectories").fetchone()[0]
    assert quality.SOLVES_LOW <= rate <= quality.SOLVES_HIGH
    assert not [w for w in quality.warnings(connect(str(mixed))) if "solves" in w]
