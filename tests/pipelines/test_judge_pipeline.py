"""The judge inside `prmflow run`, on the fake backend (a policy and a judge of its arithmetic):
the adversarial corpus through the whole judge path, MC + judge + consensus side by side, a judge
as the outcome labeler of rollouts, and a rubric-judged run on a generic input."""

from __future__ import annotations

import json

import duckdb
import pytest
import yaml

from prmflow.analysis.gold import gold_metrics_dicts
from prmflow.analysis.views import connect
from prmflow.labelers.outcome import make_outcome_labeler
from prmflow.pipelines.label import run
from prmflow.samplers.fake_backend import fake_answer
from tests.judge.adversarial import CORPUS, PROBLEM, REFERENCE, RUBRIC

FAKE = {"backend": "fake", "model": "fake"}


def write(tmp_path, name: str, config: dict, rows: list[dict]) -> str:
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config["inputs"][0]["path"] = str(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def sql(out, query):
    return duckdb.sql(query.replace("T(", f"read_parquet('{out}/").replace(")T", "/*.parquet')")).fetchall()


@pytest.mark.parametrize("template", ["first-error", "paragraph-analysis", "answer-equivalence", "rubric"])
@pytest.mark.parametrize("echo", [False, True])
def test_adversarial_corpus_through_the_whole_judge_path(tmp_path, template, echo):
    rows = [{"q": PROBLEM, "steps": list(a.steps), "a": REFERENCE, "r": RUBRIC, "id": a.name} for a in CORPUS]
    config = {
        "name": "adversarial",
        "inputs": [{"name": "adv", "format": "jsonl", "fields": {
            "prompt": "q", "steps": "steps", "reference_answer": "a", "rubric": "r", "id": "id"}}],
        "segment": {"strategy": "given"},
        "outcome": {"labeler": "exact"},
        "judge": {"sampler": {**FAKE, "engine_kwargs": {"judge_echo": echo}}, "template": template, "votes": 1},
    }
    manifest = run([write(tmp_path, "adv", config, rows), "--output", str(tmp_path / "out")])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    got = sql(tmp_path / "out", "SELECT steps, judge_first_error, judge_outcome, judge_unparsed FROM T(trajectories)T")
    assert len(got) == len(CORPUS)
    truth = {tuple(a.steps): a.first_error for a in CORPUS}
    for steps, first_error, outcome, unparsed in got:
        if echo:  # the judge repeated its prompt: the solution's injected verdict must not be read from it
            assert (first_error, outcome, unparsed) == (None, None, 1), steps
        elif template in ("first-error", "paragraph-analysis"):
            assert first_error == truth[tuple(steps)], steps
        else:
            assert outcome == (1.0 if truth[tuple(steps)] == -1 else 0.0), steps


def arith_like(tmp_path, n: int = 16):
    rows = [{"q": f"Add {i}, {i + 2} and {2 * i + 1}.", "a": fake_answer(f"Add {i}, {i + 2} and {2 * i + 1}.")}
            for i in range(n)]
    inputs = [{"name": "add", "format": "jsonl", "fields": {"prompt": "q", "reference_answer": "a"}}]
    return rows, inputs


def test_mc_judge_and_consensus_side_by_side(tmp_path):
    rows, inputs = arith_like(tmp_path)
    config = {
        "name": "mc-judge",
        "inputs": inputs,
        "sampler": {**FAKE, "engine_kwargs": {"step_error": 0.2}},
        "sampling": {"n": 4, "template": "question-answer", "batch_size": 8},
        "outcome": {"labeler": "exact"},
        "process": {"method": "mc", "rollouts": 4, "batch_trajectories": 8},
        "judge": {"sampler": {**FAKE, "engine_kwargs": {"judge_error": 0.3}}, "votes": 3, "temperature": 1.0},
        "consistency": {"mode": "hard", "score": "judge_score", "threshold": 0.5},
    }
    out = tmp_path / "out"
    manifest = run([write(tmp_path, "mcj", config, rows), "--output", str(out)])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    assert manifest["counts"]["judged"] == {"add": 64} and manifest["counts"]["engine"]["judge_requests"] == 64
    traj = sql(out, "SELECT consensus, consensus_reason, judge_votes, judge_agreement FROM T(trajectories)T")
    assert all(v == 3 and 0 < a <= 1 for _, _, v, a in traj)
    kept = [c for c, _, _, _ in traj]
    assert True in kept and False in kept  # a noisy judge disagrees sometimes
    assert {r for c, r, _, _ in traj if c} == {"agree"}
    steps = sql(out, "SELECT count(*), count(judge_score), count(weight), bool_and(consensus IS NOT NULL) FROM T(steps)T")[0]
    assert steps[0] == steps[1] == steps[2] and steps[3]
    con = connect(str(out))
    methods = {m["method"] for m in gold_metrics_dicts(con)}
    assert methods == set()  # no gold in this input: the side-by-side table needs exact truth (arith)


def test_judge_as_the_outcome_labeler_of_trajectories_and_rollouts(tmp_path):
    rows, inputs = arith_like(tmp_path, 8)
    config = {
        "name": "judged-rollouts",
        "inputs": inputs,
        "sampler": {**FAKE, "engine_kwargs": {"step_error": 0.25}},
        "sampling": {"n": 2, "template": "question-answer"},
        "outcome": {"labeler": "judge"},
        "process": {"method": "mc", "rollouts": 4},
        "judge": {"sampler": {**FAKE, "engine_kwargs": {"judge_error": 0.0}}, "template": "answer-equivalence"},
    }
    out = tmp_path / "out"
    manifest = run([write(tmp_path, "jr", config, rows), "--output", str(out)])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    sources = sql(out, "SELECT DISTINCT outcome_source, outcome_status FROM T(trajectories)T")
    assert sources == [("judge", "ok")]
    # an error-free judge agrees with the exact answer on every trajectory and every rollout
    exact = make_outcome_labeler("exact")
    judged = sql(out, """SELECT t.text, p.reference_answer, t.outcome FROM T(trajectories)T t
                         JOIN T(problems)T p USING (problem_id)""")
    judged += sql(out, """SELECT s.prefix || r.completion, p.reference_answer, r.outcome FROM T(rollouts)T r
                          JOIN T(start_states)T s USING (start_state_id) JOIN T(problems)T p ON p.problem_id = r.problem_id""")
    assert len(judged) > 16
    for text, reference, outcome in judged:
        assert outcome == exact.label(text, reference).value, text


def test_rubric_judged_run_on_a_generic_input(tmp_path):
    rows = [
        {"q": "Explain why the sky is blue in one sentence.", "r": "Mentions Rayleigh scattering of short wavelengths.",
         "s": "Sunlight scatters off air molecules, and blue light scatters most (Rayleigh scattering)."},
        {"q": "Name a prime number larger than 10.", "r": "States a prime above 10.", "s": "12 is prime."},
        {"q": "Say hello.", "s": "Hello."},  # no rubric: cannot be judged, status no_reference
    ]
    config = {
        "name": "rubric",
        "inputs": [{"name": "fuzzy", "format": "jsonl", "fields": {"prompt": "q", "rubric": "r", "solution": "s"}}],
        "outcome": {"labeler": "judge"},
        "judge": {"sampler": FAKE, "template": "rubric", "votes": 1},
    }
    out = tmp_path / "out"
    manifest = run([write(tmp_path, "rubric", config, rows), "--output", str(out)])
    assert manifest["reconciliation"]["ok"], manifest["reconciliation"]
    got = dict(sql(out, "SELECT outcome_status, count(*) FROM T(trajectories)T GROUP BY ALL"))
    assert got == {"ok": 2, "no_reference": 1}
    judged = sql(out, "SELECT outcome_source, judge_outcome IS NOT NULL FROM T(trajectories)T WHERE outcome_status = 'ok'")
    assert judged == [("judge", True), ("judge", True)]
    dead = sql(out, "SELECT stage, reason FROM T(dead_letters)T")
    assert dead == [("judge", "missing_rubric")]  # the judge stage could not render the third one either
