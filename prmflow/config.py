"""Run configuration: a YAML file, validated into frozen dataclasses before any work starts.

Unknown keys are errors (a typo must not silently fall back to a default). Relative paths are
resolved against the current directory, like paths on a command line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prmflow.segment import SegmentConfig

FORMATS = ("arith", "gsm8k", "math500", "processbench", "prm800k", "jsonl", "json", "parquet")
DEFAULT_DOMAIN = {"arith": "arith", "gsm8k": "math", "math500": "math", "processbench": "math", "prm800k": "math"}
GENERIC_FIELDS = (
    "id", "prompt", "reference_answer", "solution", "steps", "demonstration", "rubric", "generator",
    "gold_outcome", "gold_first_error", "gold_step_labels", "step_scores", "domain",
)


class ConfigError(ValueError):
    """The config is invalid; the message names the key and the offending value."""


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__} {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(names)}")
    try:
        return cls(**data)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


@dataclass(frozen=True)
class InputConfig:
    format: str
    """gsm8k | math500 | processbench | prm800k | jsonl | json | parquet (the last three use ``fields``)."""
    name: str | None = None
    """The ``source`` column of every row from this input; defaults to the format."""
    domain: str | None = None
    """math | arith | code | general; defaults by format (math for the math sets, general otherwise)."""
    fields: dict[str, str] | None = None
    """Generic formats: prmflow field -> dotted path in the row, e.g. {prompt: question.problem}."""
    references: dict[str, Any] | None = None
    """Another input ({format, path, fields}) whose reference answers are joined by problem text."""
    import_solutions: bool = True
    """Import the source's solutions as trajectories (for GSM8K/MATH500: the reference rationale)."""
    limit: int | None = None
    """Read at most this many rows per file (for quick runs)."""
    path: str | None = None
    """A file, a glob, or a Beam filesystem URL (gs://..., s3://...); not used by arith."""
    count: int | None = None
    """arith: how many problems to generate."""
    seed: int = 0
    """arith: generator seed (problem i is the same for any count > i)."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"inputs[].format must be one of {FORMATS}, got {self.format!r}")
        if self.format == "arith":
            if not self.count or self.count < 1:
                raise ConfigError(f"inputs[].count must be >= 1 for format 'arith', got {self.count!r}")
        elif not self.path:
            raise ConfigError(f"inputs[].path must be a non-empty path or URL for format {self.format!r}")
        if self.format in ("jsonl", "json", "parquet"):
            if not self.fields or "prompt" not in self.fields:
                raise ConfigError(f"inputs[].fields must map at least 'prompt' for format {self.format!r}, got {self.fields!r}")
        if self.fields:
            unknown = sorted(set(self.fields) - set(GENERIC_FIELDS))
            if unknown:
                raise ConfigError(f"inputs[].fields has unknown keys {unknown}; allowed: {list(GENERIC_FIELDS)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"inputs[].limit must be >= 1, got {self.limit}")
        if self.references is not None:
            self.reference_input()  # validate now, not mid-run

    @property
    def source_name(self) -> str:
        return self.name or self.format

    @property
    def domain_name(self) -> str:
        return self.domain or DEFAULT_DOMAIN.get(self.format, "general")

    def reference_input(self) -> InputConfig:
        refs = dict(self.references or {})
        refs.setdefault("name", f"{self.source_name}:references")
        refs.setdefault("import_solutions", False)
        return _from_dict(InputConfig, refs, f"input {self.source_name!r} references")


@dataclass(frozen=True)
class OutcomeConfig:
    labeler: str = "math"
    """math | exact | numeric."""
    options: dict[str, Any] | None = None
    """The labeler's own settings, e.g. {timeout_s: 5} for math, {rel_tol: 1e-6} for numeric."""


@dataclass(frozen=True)
class LimitsConfig:
    max_record_bytes: int = 1 << 20
    """A raw row larger than this is dead-lettered (too_large) before parsing."""
    max_steps: int = 512
    """A solution with more steps is dead-lettered (too_many_steps)."""

    def __post_init__(self) -> None:
        if self.max_record_bytes < 1:
            raise ConfigError(f"limits.max_record_bytes must be >= 1, got {self.max_record_bytes}")
        if self.max_steps < 1:
            raise ConfigError(f"limits.max_steps must be >= 1, got {self.max_steps}")


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    """Where shards go; ``--output`` overrides it."""
    num_shards: int = 1
    """Shards per table; rows go to shard hash(id) % num_shards, so contents are reproducible."""
    overwrite: bool = True
    """Replace an existing output; false refuses to write into a finished output."""

    def __post_init__(self) -> None:
        if self.num_shards < 1:
            raise ConfigError(f"output.num_shards must be >= 1, got {self.num_shards}")


@dataclass(frozen=True)
class RunConfig:
    name: str
    inputs: tuple[InputConfig, ...]
    seed: int = 0
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    outcome: OutcomeConfig = field(default_factory=OutcomeConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    extra: dict[str, Any] | None = None
    """Sections owned by later stages (sampler, sampling, process), validated by those stages."""

    def digest(self) -> str:
        """A hash of the whole config, stored with every output for provenance."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"segment": SegmentConfig, "outcome": OutcomeConfig, "limits": LimitsConfig, "output": OutputConfig}
EXTRA_SECTIONS = ("sampler", "sampling", "process", "consistency", "domain")


def parse_config(data: Any, where: str = "config") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping at the top level, got {type(data).__name__}")
    allowed = {"name", "seed", "inputs", *_SECTIONS, *EXTRA_SECTIONS}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    inputs = data.get("inputs") or []
    if not isinstance(inputs, list) or not inputs:
        raise ConfigError(f"{where}.inputs must be a non-empty list, got {inputs!r}")
    kwargs: dict[str, Any] = {
        "name": str(data.get("name") or "prmflow"),
        "seed": data.get("seed", 0),
        "inputs": tuple(_from_dict(InputConfig, d, f"inputs[{i}]") for i, d in enumerate(inputs)),
    }
    if not isinstance(kwargs["seed"], int):
        raise ConfigError(f"seed must be an integer, got {kwargs['seed']!r}")
    for key, cls in _SECTIONS.items():
        if key in data:
            kwargs[key] = _from_dict(cls, data[key] or {}, key)
    extra = {k: data[k] for k in EXTRA_SECTIONS if k in data}
    _verify_extra(extra, kwargs["seed"])
    kwargs["extra"] = extra or None
    names = [i.source_name for i in kwargs["inputs"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"inputs[].name must be unique, got {names}")
    return RunConfig(**kwargs)


def _verify_extra(extra: dict[str, Any], seed: int) -> None:
    """The stages' own sections are validated by their config classes now, not mid-run."""
    from prmflow.prompts import SamplingConfig
    from prmflow.rollouts import ProcessConfig
    from prmflow.samplers import SamplerConfig

    try:
        if extra.get("sampler") is not None:
            SamplerConfig.from_dict({"seed": seed, **extra["sampler"]})
        if "sampling" in extra:
            SamplingConfig.from_dict(extra["sampling"])
        if "process" in extra:
            ProcessConfig.from_dict(extra["process"])
        if "consistency" in extra:
            from prmflow.weights import WeightsConfig

            WeightsConfig.from_dict(extra["consistency"])
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    if ("process" in extra or "sampling" in extra) and not extra.get("sampler"):
        raise ConfigError("sampling and process sections need a sampler section (the policy they run on)")


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    return parse_config(data, where=str(path))
