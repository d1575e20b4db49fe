"""Runs to export, made once per session: a fake-policy run (Monte-Carlo labels, consistency weights and
a judge), an import-only run whose gold labels and step texts hold the awkward cases, and a reverse
curriculum run for verl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prmflow.pipelines.label import run
from prmflow.samplers.fake_backend import fake_answer


def _problems(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        q = f"Add {i}, {i + 7} and {3 * i}."
        rows.append({"q": q, "a": fake_answer(q),
                     "demo": f"Step 1: {i} + {i + 7} = {2 * i + 7}\nStep 2: {2 * i + 7} + {3 * i} = {5 * i + 7}\n"
                             f"The answer is {5 * i + 7}."})
    return rows


def _run(directory: Path, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    manifest = run([str(path), "--output", str(directory / "out")])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    return directory / "out"


@pytest.fixture(scope="session")
def mc_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mc")
    (d / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _problems(24)))
    fake = {"backend": "fake", "model": "fake", "engine_kwargs": {"step_error": 0.25}}
    return _run(d, {
        "name": "export-mc",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(d / "p.jsonl"),
                    "fields": {"prompt": "q", "reference_answer": "a"}}],
        "sampler": fake,
        "sampling": {"n": 3, "template": "question-answer", "batch_size": 8},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 6, "batch_trajectories": 12, "relative": {"mode": "ratio"}},
        "judge": {"sampler": {"backend": "fake", "model": "fake"}, "votes": 3, "temperature": 1.0},
        "consistency": {"mode": "hard", "score": "mc_value", "threshold": 0.0, "ties": "negative"},
        "output": {"num_shards": 2},
    })


PLACEHOLDER_STEP = "Let ки be the sum so far: 3 + 4 = 7"
"""A step holding Math-Shepherd's step tag: in a tagged input it would make a second placeholder."""

IMPORTED = [
    {"q": "What is 3 + 4 + 5?", "steps": ["3 + 4 = 7", "7 + 5 = 12", "The answer is 12."], "gold": [1, 1, 1]},
    {"q": "What is 3 + 4 + 5?", "steps": ["3 + 4 = 8", "8 + 5 = 13", "The answer is 13."], "gold": [0, 0, 0]},
    {"q": "What is 2 * 6?", "steps": ["2 * 6 = 12", "The answer is 12."], "gold": [1, 1]},
    {"q": "What is 9 - 4?", "steps": [PLACEHOLDER_STEP, "9 - 4 = 5", "The answer is 5."], "gold": [1, 1, 1]},
    {"q": "What is 10 / 2?", "steps": ["10 / 2 = 5", "+ - signs: 5 - 0 = 5", "The answer is 5."], "gold": [1, 1, 0]},
    {"q": "Name a prime.", "steps": ["2 is prime", "so is 4"], "gold": [1, 0]},
] + [
    {"q": f"What is {i} + {i}?", "steps": [f"{i} + {i} = {2 * i}", f"The answer is {2 * i}."], "gold": [1, 1]}
    for i in range(20, 44)
]


NEUTRAL = [{"q": "What is 5 + 5?", "steps": ["5 + 5 = 10", "so 10 it is", "The answer is 10."], "gold": [1, 0.5, 1]}]
"""PRM800K-style gold with a neutral step (0.5): not a boolean label."""


@pytest.fixture(scope="session")
def imported_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imported")
    (d / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in IMPORTED))
    (d / "n.jsonl").write_text("".join(json.dumps(r) + "\n" for r in NEUTRAL))
    fields = {"prompt": "q", "steps": "steps", "gold_step_labels": "gold"}
    return _run(d, {
        "name": "export-imported",
        "inputs": [{"name": "hand", "format": "jsonl", "path": str(d / "p.jsonl"), "import_solutions": True,
                    "fields": fields},
                   {"name": "neutral", "format": "jsonl", "path": str(d / "n.jsonl"), "import_solutions": True,
                    "fields": fields}],
        "outcome": {"labeler": "exact"},
    })


@pytest.fixture(scope="session")
def curriculum_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("curriculum")
    rows = _problems(10)
    rows.append({"q": "Add 1, 2 and no reference.", "a": None, "demo": "Step 1: 1 + 2 = 3\nThe answer is 3."})
    (d / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return _run(d, {
        "name": "export-curriculum",
        "inputs": [{"name": "add", "format": "jsonl", "path": str(d / "p.jsonl"),
                    "import_solutions": True,
                    "fields": {"prompt": "q", "reference_answer": "a", "solution": "demo"}}],
        "sampler": {"backend": "fake", "model": "fake"},
        "sampling": {"n": 0, "template": "question-answer"},
        "outcome": {"labeler": "exact"},
        "process": {"method": "reverse-curriculum", "stages": 2, "rollouts": 4},
    })
