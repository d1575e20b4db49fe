"""The ``judge:`` config section: which model judges, how it samples, which template it answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prmflow.core.section import from_mapping, require
from prmflow.judge.prompt import JudgeTemplate, load_template
from prmflow.samplers.base import SamplerConfig


@dataclass(frozen=True)
class JudgeConfig:
    sampler: SamplerConfig
    """The judge's model, any backend (a big judge is typically an OpenAI-compatible server); its
    ``chat_template`` decides whether prompts go through the judge tokenizer's chat template."""
    template: str = "first-error"
    """A builtin template (first-error, paragraph-analysis, answer-equivalence, rubric) or the path
    of a template file whose first line is ``# kind: <kind>``."""
    votes: int = 1
    """K: judge samples per trajectory, aggregated by plurality."""
    temperature: float = 0.0
    """Judge sampling temperature; > 0 when votes > 1 (K identical greedy samples are one vote)."""
    top_p: float = 1.0
    """Judge nucleus mass."""
    max_tokens: int = 512
    """Tokens per judge answer at most (a critique that runs out of tokens has no verdict)."""
    batch_size: int = 16
    """Judge requests per engine call."""

    def __post_init__(self) -> None:
        if isinstance(self.sampler, Mapping):  # Python callers may pass the YAML shape
            object.__setattr__(self, "sampler", from_mapping(SamplerConfig, self.sampler, "judge.sampler"))
        self._verify_args()
        # loaded once, here: a bad template fails at load, and workers do not read the file again
        object.__setattr__(self, "_template_spec", load_template(self.template))

    def _verify_args(self) -> None:
        require(isinstance(self.sampler, SamplerConfig), "judge.sampler", "a sampler mapping", self.sampler)
        require(self.votes >= 1, "judge.votes", ">= 1", self.votes)
        require(self.temperature >= 0, "judge.temperature", ">= 0", self.temperature)
        require(self.votes == 1 or self.temperature > 0, "judge.temperature",
                f"> 0 when judge.votes is {self.votes} (identical greedy votes are one vote)", self.temperature)
        require(0 < self.top_p <= 1, "judge.top_p", "in (0, 1]", self.top_p)
        require(self.max_tokens >= 1, "judge.max_tokens", ">= 1", self.max_tokens)
        require(self.batch_size >= 1, "judge.batch_size", ">= 1", self.batch_size)

    @property
    def template_spec(self) -> JudgeTemplate:
        return self._template_spec  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> JudgeConfig:
        return from_mapping(cls, data, "judge")
