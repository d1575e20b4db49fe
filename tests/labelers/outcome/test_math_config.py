"""``math`` options are checked when the config is loaded, with the field, the rule and the value."""

import pytest

from prmflow.labelers.outcome import parse_options
from prmflow.labelers.outcome.math import DEFAULT_TIMEOUT_S, MathConfig, MathLabeler


def test_null_timeout_means_the_default_not_no_limit():
    """Issue 10: model output is untrusted; no config can turn the time limit off."""
    assert parse_options("math", {"timeout_s": None}).timeout_s == DEFAULT_TIMEOUT_S == 5.0
    labeler = MathLabeler(parse_options("math", {"timeout_s": None}))
    try:
        assert labeler._runner is not None and labeler._runner.timeout_s == 5.0
    finally:
        labeler.close()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"timeout_s": 0}, "outcome.options.timeout_s must be a number of seconds > 0 \\(or null for 5\\), got 0"),
        ({"timeout_s": -1.5}, "got -1.5"),
        ({"timeout_s": float("nan")}, "got nan"),
        ({"timeout_s": float("inf")}, "got inf"),
        ({"timeout_s": True}, "timeout_s must be .* got True"),
        ({"timeout_s": "5"}, "timeout_s must be .* got '5'"),
        ({"float_rounding": -1}, "outcome.options.float_rounding must be an integer in \\[0, 15\\], got -1"),
        ({"float_rounding": 2.5}, "float_rounding must be .* got 2.5"),
        ({"float_rounding": "6"}, "float_rounding must be .* got '6'"),
        ({"float_rounding": True}, "float_rounding must be .* got True"),
        ({"float_rounding": 99}, "float_rounding must be .* got 99"),
        ({"in_process": True}, "unknown keys \\['in_process'\\]"),  # only Python can ask for that
    ],
)
def test_bad_options_are_refused_at_load(options, message):
    with pytest.raises(ValueError, match=message):
        parse_options("math", options)


def test_good_options_pass():
    assert parse_options("math", {"timeout_s": 2, "float_rounding": 3}) == MathConfig(timeout_s=2, float_rounding=3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rel_tol": -1}, "outcome.options.rel_tol must be a finite number >= 0, got -1"),
        ({"abs_tol": "0.1"}, "outcome.options.abs_tol must be a finite number >= 0, got '0.1'"),
        ({"rel_tol": float("nan")}, "rel_tol must be .* got nan"),
        ({"abs_tol": False}, "abs_tol must be .* got False"),
    ],
)
def test_bad_numeric_options_are_refused_at_load(options, message):
    with pytest.raises(ValueError, match=message):
        parse_options("numeric", options)
