"""Sampling settings, prompt templates (plain, few-shot, chat) and the one place requests are built:
pure code shared by every stage that asks the policy for text (trajectories, rollouts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prmflow.core.section import from_mapping
from prmflow.ids import content_id
from prmflow.samplers.base import SamplingRequest
from prmflow.schemas import Problem, Trajectory

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
        return from_mapping(cls, data, "sampling")


def render_prompt(prompt: str, config: SamplingConfig) -> str:
    """The policy's input: few-shot examples (template + solution), then the problem's template."""
    template = config.template_text
    shots = [template.replace("{prompt}", ex["prompt"]) + ex["solution"] for ex in config.few_shot]
    body = template.replace("{prompt}", prompt)
    return config.few_shot_separator.join([*shots, body]) if shots else body


def request_id(problem: Problem, config_seed: int, kind: str, *parts: object) -> str:
    """Content id of a sampling request: the same problem, seed and settings give the same id."""
    return content_id(kind, problem.problem_id, config_seed, *parts)


def seeded_request(rid: str, prompt: str, *, n: int, temperature: float, top_p: float, max_tokens: int,
                   stop: tuple[str, ...], logprobs: bool = True) -> SamplingRequest:
    """A request whose seed is explicit and derived from its content id, so a rerun of the same
    config samples the same text whatever batch the request lands in."""
    return SamplingRequest(
        request_id=rid, prompt=prompt, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
        stop=stop, seed=int(rid[:12], 16), logprobs=logprobs,
    )


def sampling_request(problem: Problem, sampling: SamplingConfig, seed: int) -> SamplingRequest:
    """The request for ``sampling.n`` trajectories of ``problem``."""
    rid = request_id(problem, seed, "sample", sampling.n, sampling.temperature, sampling.top_p,
                     sampling.max_tokens, sampling.stop, sampling.template_text, sampling.few_shot)
    return seeded_request(rid, render_prompt(problem.prompt, sampling), n=sampling.n,
                          temperature=sampling.temperature, top_p=sampling.top_p,
                          max_tokens=sampling.max_tokens, stop=sampling.stop)


def rollout_request(problem: Problem, trajectory_id: str, k: int, prefix: str, sampling: SamplingConfig,
                    rollouts: int, temperature: float, top_p: float, max_tokens: int, seed: int,
                    chunk: int = 0) -> SamplingRequest:
    """The request for ``rollouts`` continuations of a start state (the first ``k`` steps, ``prefix``);
    ``chunk`` > 0: a later round of a sequential estimate, with its own id and seed."""
    parts = ("rollout", trajectory_id, k, len(prefix), seed, rollouts, temperature, top_p, max_tokens)
    rid = content_id(*parts, "chunk", chunk) if chunk else content_id(*parts)
    return seeded_request(rid, render_prompt(problem.prompt, sampling) + prefix, n=rollouts,
                          temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=sampling.stop,
                          logprobs=False)  # rollouts only need outcomes; logprobs cost ~16% throughput


def judge_request(problem: Problem, trajectory: Trajectory, prompt: str, template_name: str, votes: int,
                  temperature: float, top_p: float, max_tokens: int, seed: int) -> SamplingRequest:
    """The request for ``votes`` judge verdicts on one trajectory (``prompt``: the rendered template)."""
    rid = content_id("judge", trajectory.trajectory_id, template_name, content_id(prompt), seed, votes,
                     temperature, top_p, max_tokens)
    return seeded_request(rid, prompt, n=votes, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                          stop=(), logprobs=False)
