"""Outcome labelers: a verdict in [0, 1] on a whole solution, with its source and status."""

from __future__ import annotations

from typing import Any

from prmflow.labelers.outcome.base import Outcome, OutcomeLabeler, extract_answer
from prmflow.labelers.outcome.math import MathConfig, MathLabeler
from prmflow.labelers.outcome.simple import ExactLabeler, NumericConfig, NumericLabeler

OUTCOME_LABELERS = ("math", "exact", "numeric")


def make_outcome_labeler(name: str, options: dict[str, Any] | None = None) -> OutcomeLabeler:
    """Build a labeler by name; options are its config fields."""
    options = dict(options or {})
    try:
        if name == "math":
            return MathLabeler(MathConfig(**options))
        if name == "numeric":
            return NumericLabeler(NumericConfig(**options))
        if name == "exact":
            if options:
                raise TypeError(f"unexpected options {sorted(options)}")
            return ExactLabeler()
    except TypeError as e:
        raise ValueError(f"outcome options for {name!r} are invalid: {e}") from None
    raise ValueError(f"outcome.labeler must be one of {OUTCOME_LABELERS}, got {name!r}")


__all__ = [
    "Outcome", "OutcomeLabeler", "MathConfig", "MathLabeler", "ExactLabeler", "NumericConfig",
    "NumericLabeler", "OUTCOME_LABELERS", "extract_answer", "make_outcome_labeler",
]
