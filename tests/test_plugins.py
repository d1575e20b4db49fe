"""Plug-ins from a user's own module: an outcome labeler and a process method registered from this
file alone (nothing under prmflow/ edited), run through the real pipeline (FnApiRunner, fake engine)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pytest
import yaml

from prmflow.config import ConfigError
from prmflow.core.rollouts import (
    PROCESS_METHODS,
    MethodContext,
    Probe,
    ProcessConfig,
    StepFields,
    estimate_probes,
    register_process_method,
)
from prmflow.core.segment import prefix_text
from prmflow.labelers.outcome import LABELERS, LabelerSpec, Outcome, is_correct, register_labeler
from prmflow.pipelines.label import run
from tests.pipelines.test_fake_policy_pipeline import write_config


@dataclass(frozen=True)
class LastLineOptions:
    strip: bool = True
    """Compare the last line after stripping spaces."""


class LastLine:
    """Right iff the solution's last line ends with the reference (a toy labeler)."""

    name = "last-line"

    def __init__(self, options: LastLineOptions) -> None:
        self.options = options
        self.calls = 0

    def label(self, solution: str, reference: str | None) -> Outcome:
        if reference is None:
            return Outcome(None, self.name, "no_reference")
        lines = [line for line in solution.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if self.options.strip:
            last = last.strip()
        return Outcome(1.0 if last.endswith(str(reference)) else 0.0, self.name, "ok", last)

    def close(self) -> None:
        pass


def first_step_only(items, config: ProcessConfig, estimate, out, context: MethodContext) -> list[list[StepFields]]:
    """A toy method: M rollouts after the first step of each trajectory; step 0 is labelled by them,
    every later step by the trajectory's own outcome."""
    probes = [Probe(i, 1, prefix_text(t.text, t.step_spans, 1)) for i, (_, t) in enumerate(items) if t.num_steps > 1]
    found = estimate_probes(items, probes, estimate, out, "first-step")
    per_step = []
    for i, (_, t) in enumerate(items):
        fields = [StepFields("first-step") for _ in range(t.num_steps)]
        outcome = None if t.outcome is None else float(bool(is_correct(t.outcome)))
        for f in fields:
            f.hard_label = f.label = outcome
        if (i, 1) in found:
            fields[0].measured(found[(i, 1)])
            fields[0].hard_label = fields[0].label = float(found[(i, 1)].successes > 0)
        per_step.append(fields)
    return per_step


@pytest.fixture
def plugins():
    register_labeler("last-line", LabelerSpec(LastLineOptions, LastLine))
    register_process_method("first-step", first_step_only)
    yield
    LABELERS.pop("last-line")
    PROCESS_METHODS.pop("first-step")


def test_a_toy_labeler_and_method_registered_here_run_through_the_pipeline(tmp_path, plugins):
    path = write_config(tmp_path)
    config = yaml.safe_load(open(path))
    config["outcome"] = {"labeler": "last-line", "options": {"strip": True}}
    config["process"] = {"method": "first-step", "rollouts": 3, "batch_trajectories": 10}
    open(path, "w").write(yaml.safe_dump(config))
    manifest = run([path, "--output", str(tmp_path / "o")])
    assert manifest["reconciliation"]["ok"]
    steps = f"read_parquet('{tmp_path}/o/steps/*.parquet')"
    methods = duckdb.sql(f"SELECT DISTINCT method FROM {steps}").fetchall()
    assert methods == [("first-step",)]
    measured = duckdb.sql(f"SELECT count(*), count(DISTINCT step_index), sum(mc_rollouts) FROM {steps} "
                          "WHERE mc_rollouts > 0").fetchall()[0]
    assert measured[1] == 1 and measured[2] == 3 * measured[0]  # only step 0, M = 3 rollouts each
    sources = duckdb.sql(f"SELECT DISTINCT outcome_source FROM read_parquet('{tmp_path}/o/trajectories/*.parquet')"
                         ).fetchall()
    assert sources == [("last-line",)]
    rollouts = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path}/o/rollouts/*.parquet')").fetchall()[0][0]
    assert rollouts == measured[2]


def test_unregistered_names_and_bad_plugin_options_are_config_errors(tmp_path, plugins):
    with pytest.raises(ConfigError, match=r"process\.method must be one of .*'first-step'.*, got 'second-step'"):
        ProcessConfig.from_dict({"method": "second-step"})
    path = write_config(tmp_path)
    config = yaml.safe_load(open(path))
    config["outcome"] = {"labeler": "last-line", "options": {"strip": True, "case": False}}
    open(path, "w").write(yaml.safe_dump(config))
    from prmflow.config import load_config

    with pytest.raises(ConfigError, match=r"outcome\.options has unknown keys \['case'\] for labeler 'last-line'"):
        load_config(path)


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_process_method("mc", first_step_only)
    with pytest.raises(ValueError, match="already registered"):
        register_labeler("math", LabelerSpec(None, lambda _: None))
