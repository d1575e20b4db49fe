"""outcome.noise (the seeded noisy channel), noise-aware MC labels, Rel-Effective and calibration."""

import json
import math
import re

import pytest

from prmflow.analysis.calibrate import estimate, wilson, write_to_manifest
from prmflow.config import ConfigError, parse_config
from prmflow.core.rollouts import Estimate, ProcessConfig, RolloutCompletion, label_batch
from prmflow.core.segment import segment_given
from prmflow.core.trajectories import from_segmentation
from prmflow.labelers.outcome import NoiseConfig, make_outcome_labeler
from prmflow.labelers.outcome.noise import noisy_verdict
from prmflow.labelers.process.noise_aware import (
    NoiseAwareConfig,
    binomial_tail,
    debias,
    min_successes,
    noise_aware_labels,
    read_calibration,
)
from prmflow.labelers.process.relative import RelativeConfig, relative_labels
from prmflow.schemas import Problem

ARITH = [{"format": "arith", "count": 2}]


def _flip_rates(config: NoiseConfig, n: int) -> tuple[float, float]:
    fp = sum(noisy_verdict(0.0, f"row {i}", config) for i in range(n)) / n
    fn = sum(1 - noisy_verdict(1.0, f"row {i}", config) for i in range(n)) / n
    return fp, fn


@pytest.mark.parametrize("config", [
    NoiseConfig(p=0.1), NoiseConfig(p=0.3, seed=7), NoiseConfig(rho0=0.05), NoiseConfig(rho1=0.2),
    NoiseConfig(rho0=0.1, rho1=0.4, seed=3),
])
def test_empirical_flip_rates_are_within_binomial_error(config):
    n = 20_000
    fp, fn = _flip_rates(config, n)
    for observed, expected in ((fp, config.false_positive), (fn, config.false_negative)):
        sd = math.sqrt(expected * (1 - expected) / n)
        assert abs(observed - expected) <= 4 * sd + 1e-12, (observed, expected)


def test_channel_is_seeded_and_order_free():
    a, b = NoiseConfig(p=0.2, seed=1), NoiseConfig(p=0.2, seed=2)
    keys = [f"k{i}" for i in range(2000)]
    first = [noisy_verdict(1.0, k, a) for k in keys]
    assert first == [noisy_verdict(1.0, k, a) for k in keys]  # same seed, same flips
    assert first[::-1] == [noisy_verdict(1.0, k, a) for k in reversed(keys)]  # order does not matter
    assert first != [noisy_verdict(1.0, k, b) for k in keys]  # another seed, other flips
    assert noisy_verdict(None, "k", a) is None  # no verdict stays no verdict
    assert noisy_verdict(0.7, "k0", NoiseConfig(rho0=0.0, rho1=0.0)) == 1.0  # partial credit thresholded


def test_noisy_labeler_keeps_the_clean_verdict():
    labeler = make_outcome_labeler("exact", None, NoiseConfig(p=0.4, seed=5))
    outcomes = [labeler.label(f"Try {i}: the answer is \\boxed{{{i % 3}}}", "1") for i in range(400)]
    assert {o.clean_value for o in outcomes} == {0.0, 1.0}
    flipped = sum(o.value != o.clean_value for o in outcomes)
    assert 0.3 * 400 < flipped < 0.5 * 400
    many = labeler.label_many([(f"Try {i}: the answer is \\boxed{{{i % 3}}}", "1") for i in range(400)])
    assert [o.value for o in many] == [o.value for o in outcomes]
    assert make_outcome_labeler("exact").label("\\boxed{1}", "1").clean_value is None  # no channel: no clean column


@pytest.mark.parametrize("noise, message", [
    ({"p": 0.5}, "outcome.noise.p must be in [0, 0.5)"),
    ({"p": 0.1, "rho1": 0.1}, "outcome.noise.p must be set alone"),
    ({"rho0": 0.6, "rho1": 0.4}, "outcome.noise must be rho0 + rho1 < 1"),
    ({"rho0": -0.1}, "outcome.noise.rho0 must be in [0, 1)"),
    ({"seed": 1}, "outcome.noise must be a mapping with p, or rho0 and/or rho1"),
    ({"p": "high"}, "outcome.noise.p must be"),
    ({"flip": 0.1}, "outcome.noise has unknown keys ['flip']"),
])
def test_noise_config_refuses_bad_values(noise, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"inputs": ARITH, "outcome": {"labeler": "math", "noise": noise}})


def test_noise_config_loads_and_is_digested():
    clean = parse_config({"inputs": ARITH, "outcome": {"labeler": "math"}})
    noisy = parse_config({"inputs": ARITH, "outcome": {"labeler": "math", "noise": {"rho0": 0.1}}})
    assert noisy.outcome.noise == NoiseConfig(rho0=0.1) and clean.outcome.noise is None
    assert clean.digest() != noisy.digest()


# --- de-biasing and the hard-label test --------------------------------------------------------------


@pytest.mark.parametrize("v, rho0, rho1, expected", [
    (0.1, 0.1, 0.2, 0.0),          # a dead prefix's expected observed rate de-biases to 0
    (0.1 + 0.7 * 0.5, 0.1, 0.2, 0.5),
    (0.9, 0.1, 0.0, 8 / 9),
    (1.0, 0.1, 0.2, 1.0),          # clipped
    (0.0, 0.1, 0.2, 0.0),          # clipped
    (None, 0.1, 0.2, None),
])
def test_debias(v, rho0, rho1, expected):
    got = debias(v, rho0, rho1)
    assert got == expected if expected is None else got == pytest.approx(expected)


def test_any_success_labels_a_dead_prefix_good_34_percent_at_rho0_005():
    assert binomial_tail(8, 0.05, 1) == pytest.approx(1 - 0.95**8) and round(1 - 0.95**8, 2) == 0.34
    assert min_successes(8, 0.0) == 1  # no noise: Math-Shepherd's "any success"
    s = min_successes(8, 0.1, 0.05)
    assert binomial_tail(8, 0.1, s) <= 0.05 < binomial_tail(8, 0.1, s - 1) and s == 3
    assert min_successes(1, 0.1, 0.05) == 2  # one rollout cannot beat a 10% false-positive rate


def test_noise_aware_labels_on_constructed_rollouts():
    # prefix values 1, 1, 0 (dead from step 2), observed through rho0 = 0.1, rho1 = 0.2, N = 8
    config = NoiseAwareConfig(rho0=0.1, rho1=0.2)
    labels = noise_aware_labels([6, 5, 1], [8, 8, 8], config, 8, outcome_correct=False)
    assert labels.hard == [1.0, 1.0, 0.0] and labels.first_error == 2
    assert labels.values[0] == pytest.approx((6 / 8 - 0.1) / 0.7) and labels.values[2] == pytest.approx(0.025 / 0.7)
    # the unmeasured last step (the outcome itself) takes the verdict, untested
    labels = noise_aware_labels([6, 0], [8, 0], config, 8, outcome_correct=True)
    assert labels.hard == [1.0, 1.0] and labels.values[1] == 1.0


def test_noise_aware_beats_any_success_on_simulated_dead_prefixes():
    # 2000 dead and 2000 live (true value 0.6) prefixes observed through rho0 = 0.1, rho1 = 0.1
    rho0, rho1, n = 0.1, 0.1, 8
    channel = NoiseConfig(rho0=rho0, rho1=rho1, seed=11)
    cfg = NoiseAwareConfig(rho0=rho0, rho1=rho1)
    right = {"any": 0, "aware": 0}
    for i in range(4000):
        live = i % 2 == 0
        clean = [1.0 if live and (i * 7 + j * 13) % 10 < 6 else 0.0 for j in range(n)]
        s = sum(noisy_verdict(c, f"{i}/{j}", channel) for j, c in enumerate(clean))
        right["any"] += (s >= 1) == live
        right["aware"] += noise_aware_labels([int(s)], [n], cfg, n).hard[0] == float(live)
    assert right["aware"] > right["any"]


def test_process_noise_aware_in_label_batch():
    problem = Problem(problem_id="p", source="s", domain="math", prompt="q", reference_answer="1")
    seg = segment_given(["a", "b", "c"])
    t = from_segmentation(problem, seg, origin="sampled", max_steps=10, generator="g", outcome=0.0)
    successes = {1: 8, 2: 1}  # prefix 2 is dead but one false positive got through

    def estimate(probes):
        return [Estimate([RolloutCompletion("c", "1", 1.0 if i < successes[p.k] else 0.0, "ok", 1, "stop")
                          for i in range(8)], 0, 1) for p in probes]

    plain = label_batch([(problem, t)], ProcessConfig(rollouts=8), estimate)
    aware = label_batch([(problem, t)], ProcessConfig(rollouts=8, noise_aware={"rho0": 0.1, "rho1": 0.0}), estimate)
    assert [r.hard_label for r in plain.steps] == [1.0, 1.0, 0.0]
    assert [r.hard_label for r in aware.steps] == [1.0, 0.0, 0.0]
    assert [r.mc_value for r in aware.steps] == [r.mc_value for r in plain.steps]  # observed rates kept
    assert aware.steps[1].soft_label == pytest.approx((0.125 - 0.1) / 0.9)


@pytest.mark.parametrize("process, message", [
    ({"noise_aware": {"rho0": 1.2, "rho1": 0.0}}, "process.noise_aware.rho0 must be a number in [0, 1)"),
    ({"noise_aware": {"rho0": 0.5, "rho1": 0.5}}, "process.noise_aware must have rho0 + rho1 < 1"),
    ({"noise_aware": {"rho0": 0.1}}, "process.noise_aware.rho1 must be a number"),
    ({"noise_aware": {"rho0": 0.1, "rho1": 0.1, "alpha": 0}}, "process.noise_aware.alpha must be in (0, 1)"),
    ({"noise_aware": {"calibration": "/nonexistent"}}, "process.noise_aware.calibration must name"),
    ({"method": "reverse-curriculum", "noise_aware": {"rho0": 0.1, "rho1": 0.1}}, "process.noise_aware must be null"),
])
def test_noise_aware_config_refuses_bad_values(process, message):
    sampler = {"backend": "fake", "model": "fake"}
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"inputs": ARITH, "sampler": sampler, "process": process})


# --- StepWiser Rel-Effective ------------------------------------------------------------------------


def test_rel_effective():
    config = RelativeConfig(mode="effective")  # alpha 0.4, best-of-4 prover
    # 0.1 + 0.4 * ((1 - 0.9^4) - 1) < 0: a step that loses most of the value is bad though Q > 0;
    # a dead prefix is bad; a step from 0.5 to 0.5 keeps Q > 0 and the prover's value: good
    assert relative_labels([1.0, 0.1, 0.0, 0.5, 0.5], config) == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert relative_labels([0.9, 0.6], config) == [1.0, 1.0]  # 0.6 + 0.4 * (0.9744 - 0.9999) > 0
    with pytest.raises(ValueError, match="alpha must be"):
        RelativeConfig(mode="effective", alpha=-1)
    with pytest.raises(ValueError, match="prover_k must be"):
        RelativeConfig(mode="effective", prover_k=0)


# --- calibration --------------------------------------------------------------------------------------


def test_calibration_estimate_and_manifest(tmp_path):
    channel = NoiseConfig(rho0=0.15, rho1=0.05, seed=2)
    pairs = [(noisy_verdict(g, f"t{i}", channel), g) for i, g in enumerate([0.0, 1.0] * 2000)]
    cal = estimate(pairs)
    assert cal.rho0_interval[0] <= 0.15 <= cal.rho0_interval[1]
    assert cal.rho1_interval[0] <= 0.05 <= cal.rho1_interval[1]
    assert cal.youden_j == pytest.approx(1 - cal.rho0 - cal.rho1)
    with pytest.raises(ValueError, match="needs gold-right and gold-wrong"):
        estimate([(1.0, 1.0)])
    (tmp_path / "manifest.json").write_text(json.dumps({"run": "x"}))
    write_to_manifest(str(tmp_path), cal, None)
    assert read_calibration(tmp_path) == (cal.rho0, cal.rho1)
    assert NoiseAwareConfig(calibration=str(tmp_path)).rho0 == cal.rho0
    assert json.loads((tmp_path / "manifest.json").read_text())["run"] == "x"  # the rest is kept


def test_wilson():
    lo, hi = wilson(10, 100)
    assert lo < 0.1 < hi and wilson(0, 0) == (0.0, 1.0) and wilson(0, 50)[0] == pytest.approx(0.0)
