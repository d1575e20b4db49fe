"""The ``judge:`` section: built from YAML mappings, refused at load with one line naming the key."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from prmflow.core.section import ConfigError, from_mapping
from prmflow.judge import JudgeConfig
from prmflow.samplers.base import SamplerConfig

FAKE = {"backend": "fake", "model": "fake"}


def build(**overrides) -> JudgeConfig:
    return from_mapping(JudgeConfig, {"sampler": FAKE, **overrides}, "judge")


def test_defaults():
    c = build()
    assert isinstance(c.sampler, SamplerConfig) and c.sampler.backend == "fake"
    assert (c.template, c.votes, c.temperature, c.top_p, c.max_tokens, c.batch_size) == (
        "first-error", 1, 0.0, 1.0, 512, 16)
    assert c.template_spec.kind == "first-error"


def test_a_full_section():
    c = build(template="rubric", votes=5, temperature=0.7, top_p=0.95, max_tokens=2048, batch_size=4,
              sampler={**FAKE, "engine_kwargs": {"judge_error": 0.2}})
    assert c.template_spec.kind == "rubric" and c.votes == 5
    assert c.sampler.engine_kwargs == {"judge_error": 0.2}


def test_a_template_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# kind: answer-equivalence\n{solution} {reference} \\boxed{{}}", encoding="utf-8")
    assert build(template=str(path)).template_spec.kind == "answer-equivalence"


def test_python_callers_may_pass_the_sampler_mapping():
    assert JudgeConfig(sampler=FAKE).sampler == SamplerConfig(backend="fake", model="fake")


def test_copies_and_pickles_keep_the_template():
    c = build(template="paragraph-analysis", votes=3, temperature=1.0)
    again = pickle.loads(pickle.dumps(c))
    assert again == c and again.template_spec == c.template_spec
    assert dataclasses.replace(c, template="rubric").template_spec.kind == "rubric"


ERRORS = [
    ({"votes": 0}, "judge.votes must be >= 1, got 0"),
    ({"votes": 3}, "judge.temperature must be > 0 when judge.votes is 3 (identical greedy votes are one vote), got 0.0"),
    ({"votes": 3, "temperature": 0}, "judge.temperature must be > 0 when judge.votes is 3"),
    ({"temperature": -0.5}, "judge.temperature must be >= 0, got -0.5"),
    ({"top_p": 0}, "judge.top_p must be in (0, 1], got 0"),
    ({"top_p": 1.5}, "judge.top_p must be in (0, 1], got 1.5"),
    ({"max_tokens": 0}, "judge.max_tokens must be >= 1, got 0"),
    ({"batch_size": 0}, "judge.batch_size must be >= 1, got 0"),
    ({"votes": "3"}, "judge.votes must be an integer, got '3'"),
    ({"votes": 2.0}, "judge.votes must be an integer, got 2.0"),
    ({"temperature": "hot"}, "judge.temperature must be a number, got 'hot'"),
    ({"template": 3}, "judge.template must be a string, got 3"),
    ({"template": "critique"}, "judge.template must be one of ['first-error', 'paragraph-analysis', "
                               "'answer-equivalence', 'rubric'] or the path of a template file"),
    ({"template": "/no/such.txt"}, "no such file"),
    ({"judge_model": "x"}, "judge has unknown keys ['judge_model']"),
    ({"sampler": {"backend": "fake"}}, "judge.sampler.model is required"),
    ({"sampler": {**FAKE, "bogus": 1}}, "judge.sampler has unknown keys ['bogus']"),
    ({"sampler": {**FAKE, "engine_kwargs": {"judge_error": 2}}}, "engine_kwargs.judge_error must be a number in [0, 1], got 2"),
    ({"sampler": {**FAKE, "engine_kwargs": {"judge_echo": "yes"}}}, "engine_kwargs.judge_echo must be true or false"),
    ({"sampler": "fake"}, "judge.sampler must be a mapping, got 'fake'"),
]


@pytest.mark.parametrize("overrides,message", ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_errors(overrides, message):
    with pytest.raises(ConfigError) as e:
        build(**overrides)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_the_sampler_is_required():
    with pytest.raises(ConfigError, match="judge.sampler is required"):
        from_mapping(JudgeConfig, {}, "judge")
