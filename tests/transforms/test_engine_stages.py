"""Sampling and step labeling on TestPipeline with the fake backend: the whole Beam wiring of
SampleTrajectories and LabelSteps (batches, RunInference, dead letters, rounds, audit rows) in
well under a second, with Monte-Carlo values that mean something. The same paths on real vLLM are
in tests/pipelines/ (marked ``engine``)."""

from __future__ import annotations

import os
import pickle
import re
import tempfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from prmflow.config import OutcomeConfig
from prmflow.core.prompts import SamplingConfig
from prmflow.core.rollouts import ProcessConfig
from prmflow.core.segment import SegmentConfig
from prmflow.core.trajectories import with_outcome
from prmflow.ids import content_id
from prmflow.labelers.outcome import make_outcome_labeler
from prmflow.samplers import SamplerConfig
from prmflow.samplers.fake_backend import fake_answer
from prmflow.schemas import Problem
from prmflow.transforms.rollout import LabelSteps
from prmflow.transforms.sample import SampleTrajectories

OPTIONS = PipelineOptions(["--runner=FnApiRunner"])
SAMPLER = SamplerConfig(backend="fake", model="fake", seed=3, max_model_len=60, engine_kwargs={"step_error": 0.15})
SAMPLING = SamplingConfig(n=4, template="question-answer", batch_size=5)
STEP = re.compile(r"Step \d+: (-?\d+) \+ (-?\d+) = (-?\d+)")


def problem(i: int, prompt: str) -> Problem:
    return Problem(problem_id=content_id("t", prompt), source="t", domain="general", prompt=prompt,
                   reference_answer=fake_answer(prompt), source_index=i)


PROBLEMS = [problem(i, f"Add {i}, {i + 3}, {2 * i + 1} and {i % 5}.") for i in range(12)]
TOO_LONG = problem(90, "Add " + " ".join(["1,"] * 80) + " 2.")
FAILING = problem(91, "Add 1 and 2. [fake-error: http_500]")


def true_first_error(text: str) -> int:
    """The fake's truth: the first step whose sum is wrong (-1: none)."""
    for i, m in enumerate(STEP.finditer(text)):
        a, b, c = map(int, m.groups())
        if a + b != c:
            return i
    return -1


def _save(elements: list, path: str) -> None:
    with open(path, "wb") as f:
        pickle.dump(elements, f)


class Collected:
    """PCollections materialised after the pipeline ran (DoFns are pickled, so they write files)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="prmflow-test-")

    def keep(self, name: str, pcoll) -> None:
        _ = pcoll | f"ToList[{name}]" >> beam.combiners.ToList() | f"Save[{name}]" >> beam.Map(
            _save, os.path.join(self.dir, name))

    def __getitem__(self, name: str) -> list:
        with open(os.path.join(self.dir, name), "rb") as f:
            return pickle.load(f)


def sample(problems):
    """(trajectories, dead letters) of one sampling run, materialised."""
    got = Collected()
    with TestPipeline(options=OPTIONS) as p:
        _, items, dead, _ = p | beam.Create(problems) | SampleTrajectories(SAMPLER, SAMPLING, 0, SegmentConfig(), 20)
        got.keep("items", items)
        got.keep("dead", dead)
    return got["items"], got["dead"]


def test_sampling_gives_n_trajectories_per_problem_and_one_dead_letter_per_refused_request():
    items, dead = sample([*PROBLEMS, TOO_LONG, FAILING])
    per_problem: dict[str, int] = {}
    for prob, t in items:
        per_problem[prob.problem_id] = per_problem.get(prob.problem_id, 0) + 1
        assert t.num_steps == 5 and t.steps[-1].startswith("The answer is")  # 4 sums + the answer line
    assert per_problem == {p.problem_id: 4 for p in PROBLEMS}
    assert sorted((d.stage, d.reason, d.location) for d in dead) == [
        ("sample", "http_500", 91), ("sample", "prompt_too_long", 90)]


def test_sampling_is_reproducible_and_seeded_per_request():
    first, _ = sample(PROBLEMS)
    again, _ = sample(list(reversed(PROBLEMS)))  # other order, other batches: same samples
    assert sorted(t.trajectory_id for _, t in first) == sorted(t.trajectory_id for _, t in again)
    texts = {t.text for _, t in first}
    assert len(texts) > len(PROBLEMS)  # samples of one problem differ


def labeled_items():
    items, _ = sample(PROBLEMS)
    labeler = make_outcome_labeler("exact")
    return [(p, with_outcome(t, labeler.label(t.text, p.reference_answer))) for p, t in items]


def label_steps(items, process: ProcessConfig):
    got = Collected()
    with TestPipeline(options=OPTIONS) as p:
        steps, states, rollouts, dead, engine = (
            p | beam.Create(items) | LabelSteps(SAMPLER, SAMPLING, process, OutcomeConfig("exact"), 0, {"test": 1})
        )
        for name, pcoll in (("steps", steps), ("states", states), ("rollouts", rollouts), ("dead", dead)):
            got.keep(name, pcoll)
        assert_that(engine | beam.Map(lambda kv: kv[0]) | beam.Distinct(),
                    equal_to([f"rollout_{k}" for k in ("requests", "prompt_tokens", "generated_tokens",
                                                        "cached_prompt_tokens", "failures", "samples", "batches")]))
    return {k: got[k] for k in ("steps", "states", "rollouts", "dead")}


@pytest.fixture(scope="module")
def items():
    found = labeled_items()
    outcomes = {t.outcome for _, t in found}
    assert outcomes == {0.0, 1.0}, outcomes  # both kinds, or the test below proves nothing
    return found


def first_errors(steps) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in steps:
        if r["first_error"]:
            out[r["trajectory_id"]] = r["step_index"]
    return out


def test_mc_labels_find_every_true_first_error(items):
    out = label_steps(items, ProcessConfig(method="mc", rollouts=8, max_tokens=60, batch_trajectories=7))
    steps = out["steps"]
    assert len(steps) == sum(t.num_steps for _, t in items)
    truth = {t.trajectory_id: true_first_error(t.text) for _, t in items}
    found = first_errors(steps)
    assert found == {tid: k for tid, k in truth.items() if k >= 0}
    for r in steps:  # past the first error a prefix is dead: no rollout can succeed
        k = truth[r["trajectory_id"]]
        if k >= 0 and r["step_index"] >= k and r["mc_rollouts"]:
            assert r["mc_value"] == 0.0
    # the audit: every rollout row belongs to a start state, and the counts agree
    assert sum(s["rollouts"] for s in out["states"]) == len(out["rollouts"])
    assert sum(r["mc_rollouts"] or 0 for r in steps) == len(out["rollouts"])
    assert out["dead"] == []


def test_binary_search_agrees_with_mc_and_spends_fewer_rollouts(items):
    mc = label_steps(items, ProcessConfig(method="mc", rollouts=8, max_tokens=60, batch_trajectories=7))
    bs = label_steps(items, ProcessConfig(method="binary-search", rollouts=8, max_tokens=60, batch_trajectories=7))
    assert first_errors(bs["steps"]) == first_errors(mc["steps"])
    assert 0 < len(bs["rollouts"]) < len(mc["rollouts"])


def test_reverse_curriculum_writes_staged_start_states(items):
    out = label_steps(items[:8], ProcessConfig(method="reverse-curriculum", rollouts=4, stages=3, max_tokens=60))
    by_traj: dict[str, list] = {}
    for s in out["states"]:
        by_traj.setdefault(s["trajectory_id"], []).append((s["stage"], s["k"]))
    assert len(by_traj) == 8
    for stages in by_traj.values():
        stages.sort()
        assert [st for st, _ in stages] == [0, 1, 2]
        assert [k for _, k in stages] == sorted((k for _, k in stages), reverse=True)  # stage 0 nearest the end
