"""Run configuration: a YAML file, parsed once into typed frozen sections and validated before any
work starts.

Every section is a frozen dataclass built by :func:`prmflow.core.section.from_mapping`: unknown keys
are errors (a typo must not silently fall back to a default), each value is checked against its
field's type, then the section's own rules run. A bad value is refused at load with one line,
"<section>.<field> must be <rule>, got <value>" (``prmflow run`` exits 2), never on a worker. Relative
paths are resolved against the current directory, like paths on a command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from prmflow.core.prompts import SamplingConfig
from prmflow.core.rollouts import ProcessConfig
from prmflow.core.section import ConfigError, from_mapping, load_yaml, require
from prmflow.core.segment import SegmentConfig
from prmflow.core.weights import WeightsConfig
from prmflow.judge import JudgeConfig
from prmflow.labelers.outcome import (
    LABELERS,
    NoiseConfig,
    make_outcome_labeler,
    parse_options,
)
from prmflow.prm.config import PRMScoreConfig
from prmflow.samplers.base import SamplerConfig

FORMATS = ("arith", "gsm8k", "math500", "processbench", "prm800k", "humaneval", "jsonl", "json", "parquet")
DOMAINS = ("math", "arith", "code", "general")
DEFAULT_DOMAIN = {
    "arith": "arith", "gsm8k": "math", "math500": "math", "processbench": "math", "prm800k": "math",
    "humaneval": "code",
}
GENERIC_FIELDS = (
    "id", "prompt", "reference_answer", "solution", "steps", "demonstration", "rubric", "generator",
    "gold_outcome", "gold_first_error", "gold_step_labels", "step_scores", "domain", "tests",
)
# Top-level sections that configure stages; each is a typed field of RunConfig.
STAGE_SECTIONS = ("sampler", "sampling", "process", "consistency", "judge", "prm")

__all__ = ["ConfigError", "InputConfig", "OutcomeConfig", "RunConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class InputConfig:
    format: str
    """arith | gsm8k | math500 | processbench | prm800k | humaneval | jsonl | json | parquet (the last
    three map their rows with ``fields``, or, without it, recognise common shapes: question / problem /
    prompt, answer with GSM8K's ``#### N`` or a plain one, solution, id)."""
    name: str | None = None
    """The ``source`` column of every row from this input; defaults to the format."""
    domain: str | None = None
    """math | arith | code | general; defaults by format (math for the math sets, general otherwise)."""
    fields: dict[str, str] | None = None
    """Generic formats: prmflow field -> dotted path in the row, e.g. {prompt: question.problem}; left
    out, common shapes are recognised (see ``format``) and a row in none is dead-lettered with a
    suggested mapping."""
    references: dict[str, Any] | None = None
    """Another input ({format, path, fields}) whose reference answers are joined by problem text."""
    import_solutions: bool | None = None
    """Import the source's solutions as trajectories (for GSM8K/MATH500: the reference rationale).
    Left out: off when the run samples a policy (the references would be labeled beside the samples,
    always right: a GSM8K rationale exports as a positive PRM example), on for a pure import."""
    limit: int | None = None
    """Read at most this many rows per file (for quick runs)."""
    path: str | None = None
    """A file, a glob, or a Beam filesystem URL (gs://..., s3://...); not used by arith."""
    count: int | None = None
    """arith: how many problems to generate."""
    seed: int = 0
    """arith: generator seed (problem i is the same for any count > i)."""

    def __post_init__(self) -> None:
        if self.import_solutions is None:  # built directly (Python, tests): a pure import's default
            object.__setattr__(self, "import_solutions", True)
        require(self.format in FORMATS, "format", f"one of {list(FORMATS)}", self.format)
        if self.format == "arith":
            require(self.count is not None and self.count >= 1, "count", ">= 1 for format 'arith'", self.count)
        else:
            require(bool(self.path and self.path.strip()), "path", f"a non-empty path or URL for format {self.format!r}",
                    self.path)
        if self.format in ("jsonl", "json", "parquet") and self.fields:
            require("prompt" in self.fields, "fields",
                    f"a mapping with at least 'prompt' for format {self.format!r} (or left out: common shapes "
                    "are recognised)", self.fields)
        if self.fields:
            unknown = sorted(set(self.fields) - set(GENERIC_FIELDS))
            if unknown:
                raise ConfigError(f"fields has unknown keys {unknown}; allowed: {list(GENERIC_FIELDS)}")
            empty = sorted(k for k, v in self.fields.items() if not v.strip())
            require(not empty, "fields", "a mapping to non-empty dotted paths", self.fields)
        require(self.limit is None or self.limit >= 1, "limit", ">= 1 or null", self.limit)
        require(self.domain is None or self.domain in DOMAINS, "domain", f"one of {list(DOMAINS)} or null", self.domain)
        # arith gold comes from the generator's programs, which only the arith format carries
        require(self.domain_name != "arith" or self.format == "arith", "domain",
                "'arith' only with format 'arith' (its exact gold comes from the generator)", self.domain)
        require(self.name is None or bool(self.name.strip()), "name", "a non-empty string or null", self.name)
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
        return from_mapping(InputConfig, refs, f"input {self.source_name!r} references")


@dataclass(frozen=True)
class OutcomeConfig:
    labeler: str = "math"
    """math | exact | numeric | code (see ``prmflow.labelers.outcome.LABELERS``)."""
    options: Any = None
    """The labeler's typed options (MathConfig, NumericConfig, ...), parsed from the YAML mapping
    at load; None for a labeler without options."""
    noise: NoiseConfig | None = None
    """A seeded noisy channel over the labeler's verdicts (stress tests, the ambiguity study)."""

    def make_labeler(self):
        """The configured labeler, behind the noisy channel when ``noise`` is set."""
        return make_outcome_labeler(self.labeler, self.options, self.noise)

    @classmethod
    def from_mapping(cls, data: Any) -> OutcomeConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"outcome must be a mapping, got {data!r}")
        unknown = sorted(set(data) - {"labeler", "options", "noise"})
        if unknown:
            raise ConfigError(f"outcome has unknown keys {unknown}; allowed: ['labeler', 'noise', 'options']")
        labeler = data.get("labeler", "math")
        require(isinstance(labeler, str) and labeler in LABELERS, "outcome.labeler",
                f"one of {list(LABELERS)}", labeler)
        noise = None if data.get("noise") is None else from_mapping(NoiseConfig, data["noise"], "outcome.noise")
        try:
            return cls(labeler, parse_options(labeler, data.get("options")), noise)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            message = str(e)
            raise ConfigError(message if message.startswith("outcome") else f"outcome.options: {message}") from None


@dataclass(frozen=True)
class LimitsConfig:
    max_record_bytes: int = 1 << 20
    """A raw row larger than this is dead-lettered (too_large) before parsing."""
    max_steps: int = 512
    """A solution with more steps is dead-lettered (too_many_steps)."""

    def __post_init__(self) -> None:
        require(self.max_record_bytes >= 1, "max_record_bytes", ">= 1", self.max_record_bytes)
        require(self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    """Where shards go; ``--output`` overrides it."""
    num_shards: int = 1
    """Shards per table; rows go to shard hash(id) % num_shards, so contents are reproducible."""
    overwrite: bool = True
    """Replace an existing output; false refuses to write into a finished output."""
    keep_cache: bool | None = None
    """Keep the stage cache (``OUT/_cache``: every engine batch's results) after the run is published.
    true keeps all of it, false none (a killed or failed run always leaves it for its rerun). Left
    out: a run that samples keeps its samples' cache, so the same config with rollouts, a judge or a
    PRM added, run into the same output, reuses the samples instead of sampling again; the rest goes."""

    def __post_init__(self) -> None:
        require(1 <= self.num_shards <= 100_000, "num_shards", "an integer in [1, 100000]", self.num_shards)
        require(self.dir is None or bool(self.dir.strip()), "dir", "a non-empty path or null", self.dir)


@dataclass(frozen=True)
class RunConfig:
    name: str
    inputs: tuple[InputConfig, ...]
    seed: int = 0
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    outcome: OutcomeConfig = field(default_factory=OutcomeConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    sampler: SamplerConfig | None = None
    """The policy (any backend); needed by sampling and process."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """How the policy samples trajectories (n = 0: none, rollouts only)."""
    process: ProcessConfig | None = None
    """Step labels from rollouts; None labels steps from the outcome alone."""
    consistency: WeightsConfig | None = None
    """MetaStone-S1 consistency weights over the steps table; None writes no weights."""
    judge: JudgeConfig | None = None
    """An LLM judge's verdicts on every trajectory (and consensus with the process labels)."""
    prm: PRMScoreConfig | None = None
    """A trained PRM's per-step scores (``steps.prm_score``), for ``consistency: {score: prm_score}``."""
    as_written: str = "{}"
    """The YAML mapping as loaded (canonical JSON): recorded in the manifest and hashed into the
    config digest, never parsed again."""

    @property
    def samples_trajectories(self) -> bool:
        return self.sampler is not None and self.sampling.n > 0

    def digest(self) -> str:
        """A hash of the whole config, stored with every output for provenance."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The config for the manifest and the digest: every resolved input and core section, and
        the stage sections as written (so the digest of a config is stable across releases that
        add defaults to a stage)."""
        written = json.loads(self.as_written)
        stages = {k: written[k] for k in STAGE_SECTIONS if k in written}
        outcome = written.get("outcome") or {}
        return {
            "name": self.name,
            "seed": self.seed,
            "inputs": [asdict(i) for i in self.inputs],
            "segment": asdict(self.segment),
            "outcome": {"labeler": self.outcome.labeler, "options": outcome.get("options"),
                        **({"noise": outcome["noise"]} if outcome.get("noise") is not None else {})},
            "limits": asdict(self.limits),
            # keep_cache decides what stays on disk, never a result: left out, it is recorded as
            # false (its earlier default), so the digests of configs that leave it out are unchanged
            "output": {**asdict(self.output), "keep_cache": bool(self.output.keep_cache)},
            # "extra" is the digest's historical key for the stage sections as written; renaming it
            # would change every existing run's provenance digest
            "extra": stages or None,
        }


_CORE_SECTIONS = {"segment": SegmentConfig, "limits": LimitsConfig, "output": OutputConfig}


def parse_config(data: Any, where: str = "config") -> RunConfig:
    """A RunConfig from the loaded YAML mapping; raises ConfigError naming the key and value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping at the top level, got {type(data).__name__}")
    allowed = {"name", "seed", "inputs", "outcome", *_CORE_SECTIONS, *STAGE_SECTIONS}
    unknown = sorted(str(k) for k in set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(allowed)}")
    name = data.get("name") or "prmflow"
    require(isinstance(name, str), "name", "a string", name)
    seed = data.get("seed", 0)
    require(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63, "seed",
            "an integer in [0, 2**63)", seed)
    inputs = data.get("inputs")
    require(isinstance(inputs, list) and bool(inputs), "inputs", "a non-empty list", inputs)
    kwargs: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "inputs": tuple(from_mapping(InputConfig, d, f"inputs[{i}]") for i, d in enumerate(inputs)),
        "as_written": _canonical_json(data),
    }
    if data.get("sampler") is not None and _samples(data.get("sampling")):
        # a run that samples labels its policy's solutions; the sources' own only when asked for
        kwargs["inputs"] = tuple(
            i if isinstance(d, Mapping) and "import_solutions" in d else replace(i, import_solutions=False)
            for i, d in zip(kwargs["inputs"], inputs, strict=True))
    names = [i.source_name for i in kwargs["inputs"]]
    require(len(set(names)) == len(names), "inputs[].name", "unique", names)
    for key, cls in _CORE_SECTIONS.items():
        if key in data:
            kwargs[key] = from_mapping(cls, data[key], key)
    if kwargs.get("segment") is not None and kwargs["segment"].model is not None:
        _check_model(kwargs["segment"].model, "segment.model")
    if "outcome" in data:
        kwargs["outcome"] = OutcomeConfig.from_mapping(data["outcome"] or {})
    if data.get("sampler") is not None:
        sampler = from_mapping(SamplerConfig, {"seed": seed, **_mapping(data["sampler"], "sampler")}, "sampler")
        _check_model(sampler, "sampler")
        kwargs["sampler"] = sampler
    if "sampling" in data:
        kwargs["sampling"] = from_mapping(SamplingConfig, data["sampling"], "sampling")
    if "process" in data:
        kwargs["process"] = from_mapping(ProcessConfig, data["process"], "process")
    if "consistency" in data:
        kwargs["consistency"] = WeightsConfig.from_mapping(data["consistency"])
    if "judge" in data:
        judge = _mapping(data["judge"], "judge")
        sampler = {"seed": seed, **_mapping(judge.get("sampler") or {}, "judge.sampler")}
        kwargs["judge"] = from_mapping(JudgeConfig, {**judge, "sampler": sampler}, "judge")
        _check_model(kwargs["judge"].sampler, "judge.sampler")
    if "prm" in data:
        kwargs["prm"] = from_mapping(PRMScoreConfig, data["prm"], "prm")
    outcome = kwargs.get("outcome")
    if outcome is not None and LABELERS[outcome.labeler].section == "judge":
        require(kwargs.get("judge") is not None, "judge", "set when outcome.labeler is 'judge' (the judge's model)", None)
        kwargs["outcome"] = OutcomeConfig(outcome.labeler, kwargs["judge"], outcome.noise)
    if ("process" in data or "sampling" in data) and kwargs.get("sampler") is None:
        raise ConfigError("sampler must be set when sampling or process is: they run on the policy, got none")
    return RunConfig(**kwargs)


def _samples(sampling: Any) -> bool:
    """Whether a ``sampling`` section (as written) samples trajectories: n > 0, default 4."""
    n = sampling.get("n", SamplingConfig.n) if isinstance(sampling, Mapping) else SamplingConfig.n
    return not isinstance(n, int) or n > 0


def _mapping(value: Any, where: str) -> Mapping:
    require(isinstance(value, Mapping), where, "a mapping", value)
    return value


def _check_model(sampler: SamplerConfig, where: str) -> None:
    """Local engines load a local directory or a shipped ``builtin:`` model; nothing is downloaded,
    so anything else (a hub repo id) is refused now rather than failing, or fetching, on a worker."""
    if sampler.backend == "openai" or sampler.backend == "fake":
        return  # a server's model name, or no model at all
    from prmflow.models import BUILTIN_PREFIX, resolve_model_path

    try:
        path = resolve_model_path(sampler.model)
    except ValueError as e:
        raise ConfigError(f"{where}.{e}") from None
    if not sampler.model.startswith(BUILTIN_PREFIX) and not (Path(path) / "config.json").is_file():
        raise ConfigError(
            f"{where}.model must be a local model directory (with config.json) or builtin:NAME; nothing is "
            f"downloaded at run time, got {sampler.model!r}"
        )
    # a context longer than the model's positions fails only when a worker builds the engine
    try:
        positions = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        positions = None
    if isinstance(positions, int) and sampler.max_model_len is not None and sampler.max_model_len > positions:
        raise ConfigError(f"{where}.max_model_len must be <= the model's max_position_embeddings ({positions}), "
                          f"got {sampler.max_model_len}")


def _canonical_json(data: Any) -> str:
    def default(o: Any) -> Any:
        return str(o)

    try:
        return json.dumps(data, sort_keys=True, default=default, allow_nan=True)
    except (TypeError, ValueError):  # non-string keys etc.: recorded as text, never parsed again
        return json.dumps({"unrepresentable": repr(data)})


def load_config(path: str | Path) -> RunConfig:
    data = load_yaml(path)
    return parse_config(data, where=str(path))
