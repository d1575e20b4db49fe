"""Outcome labelers: a verdict in [0, 1] on a whole solution, with its source and status.

Each labeler is registered once in ``LABELERS``: its name, its frozen options class (validated at
config load; ``None`` when it takes no options) and a factory from those options to a labeler. A
labeler of your own is one ``register_labeler(name, LabelerSpec(...))`` call, made before the config
is loaded (in a module your run imports, so that Beam workers in other processes import it too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prmflow.labelers.outcome.base import Outcome, OutcomeLabeler, extract_answer
from prmflow.labelers.outcome.code import CodeConfig, CodeLabeler
from prmflow.labelers.outcome.math import MathConfig, MathLabeler
from prmflow.labelers.outcome.noise import NoiseConfig, NoisyLabeler
from prmflow.labelers.outcome.simple import ExactLabeler, NumericConfig, NumericLabeler


@dataclass(frozen=True)
class LabelerSpec:
    options: type | None
    """The labeler's frozen options dataclass, or None when it takes no options."""
    factory: Callable[[Any], OutcomeLabeler]
    """options instance (or None) -> a ready labeler."""
    reference_field: str | None = "reference_answer"
    """The Problem field the labeler judges against (``tests`` for code); None: the whole Problem
    (a judge needs the problem text, its reference and its rubric)."""
    section: str | None = None
    """The top-level config section that configures this labeler instead of ``outcome.options``."""


def _judge(options: Any) -> OutcomeLabeler:
    from prmflow.labelers.outcome.judge import JudgeLabeler  # engines and the judge load lazily

    return JudgeLabeler(options)


LABELERS: dict[str, LabelerSpec] = {
    "math": LabelerSpec(MathConfig, MathLabeler),
    "numeric": LabelerSpec(NumericConfig, NumericLabeler),
    "exact": LabelerSpec(None, lambda _options: ExactLabeler()),
    "code": LabelerSpec(CodeConfig, CodeLabeler, reference_field="tests"),
    "judge": LabelerSpec(None, _judge, reference_field=None, section="judge"),
}
OUTCOME_LABELERS = tuple(LABELERS)
"""The labelers prmflow ships; ``LABELERS`` also holds the registered ones."""


def register_labeler(name: str, spec: LabelerSpec, *, replace: bool = False) -> None:
    """Make ``outcome.labeler: name`` build ``spec.factory(options)``; its options are checked against
    ``spec.options`` at config load, like a shipped labeler's. A taken name is refused unless ``replace``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a labeler name must be a non-empty string, got {name!r}")
    if not isinstance(spec, LabelerSpec):
        raise TypeError(f"register_labeler({name!r}, ...) takes a LabelerSpec, got {type(spec).__name__}")
    if name in LABELERS and not replace:
        raise ValueError(f"outcome labeler {name!r} is already registered; pass replace=True to replace it")
    LABELERS[name] = spec


CORRECT_AT = 0.5
"""An outcome counts as right at or above this (partial credit below it is wrong)."""


def is_correct(outcome: float | None) -> bool | None:
    """Whether an outcome counts as right; None when there is no verdict."""
    return None if outcome is None else outcome >= CORRECT_AT


def parse_options(name: str, options: Any = None) -> Any:
    """Labeler ``name``'s options object from a mapping (or an options object, returned as is).

    Raises ValueError naming the key: "outcome.options.<key> must be ..., got ..."."""
    if name not in LABELERS:
        raise ValueError(f"outcome.labeler must be one of {list(LABELERS)}, got {name!r}")
    spec = LABELERS[name]
    if spec.section is not None:
        if isinstance(options, dict):
            raise ValueError(f"outcome.options: labeler {name!r} is configured by the {spec.section} section, got {options!r}")
        return options  # the section's config object, handed over by the config loader
    cls = spec.options
    if cls is not None and isinstance(options, cls):
        return options
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"outcome.options must be a mapping, got {options!r}")
    options = dict(options or {})
    if cls is None:
        if options:
            raise ValueError(f"outcome.options: labeler {name!r} takes no options, got {sorted(options)}")
        return None
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"outcome.options has unknown keys {unknown} for labeler {name!r}; allowed: {sorted(allowed)}")
    return cls(**options)


def make_outcome_labeler(name: str, options: Any = None, noise: NoiseConfig | None = None) -> OutcomeLabeler:
    """Build a labeler by name from its options (an options object, or a mapping parsed here); with
    ``noise``, its verdicts go through that seeded noisy channel (``outcome.noise``)."""
    parsed = parse_options(name, options)  # first: it names an unknown labeler
    labeler = LABELERS[name].factory(parsed)
    return labeler if noise is None else NoisyLabeler(labeler, noise)


def reference_of(name: str, problem: Any) -> Any:
    """What labeler ``name`` judges a solution of ``problem`` against."""
    field = LABELERS[name].reference_field
    return problem if field is None else getattr(problem, field, None)


__all__ = [
    "CORRECT_AT", "LABELERS", "LabelerSpec", "NoiseConfig", "register_labeler", "Outcome", "is_correct", "OutcomeLabeler", "extract_answer", "make_outcome_labeler", "parse_options",
    "reference_of",
]
