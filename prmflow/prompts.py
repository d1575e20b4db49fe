"""Sampling settings and prompt templates (plain, few-shot, chat): pure code shared by every stage
that asks the policy for text (trajectories, rollouts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prmflow.ids import content_id
from prmflow.schemas import Problem

# The plain-text template the shipped builtin:arith-tiny policy was trained on
# (prmflow.domains.arith.PROMPT_TEMPLATE); kept literal here so this module stays import-light.
BUILTIN_TEMPLATES = {
    "plain": "{prompt}",
    "question-answer": "Question: {prompt}\nAnswer:\n",
    "arith": "Question: {prompt}\nAnswer:\n",
    "math-cot": "Solve the problem step by step, one step per line, and end with "
    "\"The answer is N\".\n\nProblem: {prompt}\nSolution:\n",
}


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 4
    """Solutions sampled per problem; 0 samples none (the policy then only runs rollouts, e.g. from
    imported demonstrations)."""
    temperature: float = 1.0
    """Sampling temperature; 0 is greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_tokens: int = 256
    """Tokens generated per solution at most."""
    stop: tuple[str, ...] = ()
    """Strings that end a solution (not included in it)."""
    template: str = "plain"
    """A builtin template name (plain, question-answer, arith, math-cot) or a format string with {prompt}."""
    few_shot: tuple[dict, ...] = ()
    """Worked examples [{prompt, solution}] rendered with the same template before the problem."""
    few_shot_separator: str = "\n\n"
    """Between the few-shot examples and the problem."""
    batch_size: int = 32
    """Requests per engine call. Batches are formed deterministically (by request id), so a rerun
    sends the engine the same batches."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "few_shot", tuple(self.few_shot))
        self._verify_args()

    def _verify_args(self) -> None:
        if self.n < 0:
            raise ValueError(f"sampling.n must be >= 0, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"sampling.max_tokens must be >= 1, got {self.max_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"sampling.batch_size must be >= 1, got {self.batch_size}")
        template = self.template_text
        if "{prompt}" not in template:
            raise ValueError(f"sampling.template must be one of {sorted(BUILTIN_TEMPLATES)} or contain {{prompt}}, got {self.template!r}")
        for i, ex in enumerate(self.few_shot):
            if not isinstance(ex, dict) or not {"prompt", "solution"} <= set(ex):
                raise ValueError(f"sampling.few_shot[{i}] must be a mapping with prompt and solution, got {ex!r}")

    @property
    def template_text(self) -> str:
        return BUILTIN_TEMPLATES.get(self.template, self.template)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SamplingConfig:
        from prmflow.config import _from_dict

        return _from_dict(cls, dict(data or {}), "sampling")


def render_prompt(prompt: str, config: SamplingConfig) -> str:
    """The policy's input: few-shot examples (template + solution), then the problem's template."""
    template = config.template_text
    shots = [template.replace("{prompt}", ex["prompt"]) + ex["solution"] for ex in config.few_shot]
    body = template.replace("{prompt}", prompt)
    return config.few_shot_separator.join([*shots, body]) if shots else body


def request_id(problem: Problem, config_seed: int, kind: str, *parts: object) -> str:
    """Content id of a sampling request: the same problem, seed and settings give the same id."""
    return content_id(kind, problem.problem_id, config_seed, *parts)
