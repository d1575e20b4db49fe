"""The PRM reward: a prmflow PRM's step scores on a response, aggregated into one RL reward.

The response (after its start state's prefix, for a continued row) is split into steps with the run's
segmenter (``extra_info.segment`` of a verl export row: the strategy that made the PRM's training
steps; ``given`` reads as ``lines``, a ``model`` split as its rule fallback), scored by
:class:`prmflow.prm.scorer.PRMScorer` (the PRM's own ``prm.json`` step format), and aggregated:

- ``min`` (the default): the weakest step; a solution is as good as its first mistake (Lightman et al.
  2023, "Let's Verify Step by Step", §3 scores a solution by the product/minimum of its steps);
- ``last``: the last step's score (the PRM's view of the whole solution);
- ``mean``: the average step.

A step ending past the PRM's ``max_length`` has no score and is left out; a response without a scored
step gets 0. ``outcome_weight`` w mixes in the outcome reward (:mod:`prmflow.rewards.outcome`):
``(1 - w) * prm + w * outcome``.

verl: ``reward.custom_reward_function.path=pkg://prmflow.rewards.prm``, ``name=compute_score`` and
``+reward.custom_reward_function.reward_kwargs.prm=PRM_DIR`` (plus ``aggregation``, ``outcome_weight``,
``device``, ``batch_size``). The model loads once per worker process (cached by its arguments); a call
with lists (``solution_strs`` ...) scores them in batches, as a batch reward manager passes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prmflow.core.segment import RULE_STRATEGIES, SegmentConfig, segment
from prmflow.rewards.outcome import compute_score as outcome_score
from prmflow.rewards.outcome import full_solution

AGGREGATIONS = ("min", "last", "mean")


def aggregate(scores: Sequence[float | None], how: str = "min") -> float:
    """One reward from per-step scores; unscored steps (None) are left out, none scored gives 0."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    values = [s for s in scores if s is not None]
    if not values:
        return 0.0
    if how == "min":
        return min(values)
    if how == "last":
        return values[-1]
    return sum(values) / len(values)


def segmenter(spec: dict | str | None) -> SegmentConfig:
    """The rule segmenter of a run's ``segment`` config (a dict or its JSON)."""
    data = json.loads(spec) if isinstance(spec, str) else dict(spec or {})
    data.pop("model", None)
    strategy = data.get("strategy", "lines")
    if strategy == "model":
        strategy = data.get("fallback", "lines")
    if strategy not in RULE_STRATEGIES:  # "given": the source split it; a response is split by lines
        strategy = "lines"
    known = {"pattern", "split_thinking", "think_open", "think_close", "joiner"}
    return SegmentConfig(strategy=strategy, **{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Item:
    """One response to reward: the problem text and the response (with its prefix, if continued)."""

    prompt: str
    response: str
    segment: SegmentConfig = SegmentConfig()


class PRMReward:
    """A loaded PRM that turns responses into rewards, in batches."""

    def __init__(self, prm: str, aggregation: str = "min", device: str = "auto", batch_size: int = 16) -> None:
        from prmflow.prm.scorer import PRMScorer  # torch loads here, not at import

        aggregate([], aggregation)  # refuses an unknown aggregation before the model loads
        self.aggregation = aggregation
        self.scorer = PRMScorer(prm, device=device, batch_size=batch_size)

    def step_scores(self, items: Sequence[Item]) -> list[list[float | None]]:
        steps = [segment(item.response, item.segment).steps for item in items]
        scored = [i for i, s in enumerate(steps) if s]
        out: list[list[float | None]] = [[] for _ in items]
        results = self.scorer.score_many([(items[i].prompt, steps[i]) for i in scored]) if scored else []
        for i, scores in zip(scored, results, strict=True):
            out[i] = scores
        return out

    def rewards(self, items: Sequence[Item], aggregation: str | None = None) -> list[float]:
        how = aggregation or self.aggregation
        return [aggregate(s, how) for s in self.step_scores(items)]


_MODELS: dict[tuple, PRMReward] = {}


def load(prm: str, aggregation: str = "min", device: str = "auto", batch_size: int = 16) -> PRMReward:
    """The worker's PRMReward for these arguments, loaded on first use."""
    key = (prm, aggregation, device, batch_size)
    if key not in _MODELS:
        _MODELS[key] = PRMReward(prm, aggregation, device, batch_size)
    return _MODELS[key]


def _item(solution_str: str, extra_info: dict | None, prompt: str | None) -> Item:
    info = extra_info or {}
    return Item(prompt=prompt if prompt is not None else info.get("question") or "",
                response=full_solution(solution_str, info), segment=segmenter(info.get("segment")))


def compute_score(data_source: str | None = None, solution_str: str | None = None, ground_truth: str | None = None,
                  extra_info: dict | None = None, *, prm: str | None = None, aggregation: str = "min",
                  outcome_weight: float = 0.0, device: str = "auto", batch_size: int = 16,
                  data_sources: Sequence[str] | None = None, solution_strs: Sequence[str] | None = None,
                  ground_truths: Sequence[str] | None = None, extra_infos: Sequence[dict] | None = None,
                  prompt: str | None = None, **_: Any) -> float | list[float]:
    """verl's custom reward: one response (``solution_str``) or a batch (``solution_strs``)."""
    if not prm:
        raise ValueError("prmflow.rewards.prm needs the PRM directory: "
                         "+reward.custom_reward_function.reward_kwargs.prm=PRM_DIR")
    if not 0.0 <= outcome_weight <= 1.0:
        raise ValueError(f"outcome_weight must be in [0, 1], got {outcome_weight!r}")
    batched = solution_strs is not None
    solutions = list(solution_strs) if batched else [solution_str or ""]
    infos = list(extra_infos) if extra_infos is not None else [extra_info] * len(solutions)
    truths = list(ground_truths) if ground_truths is not None else [ground_truth] * len(solutions)
    model = load(prm, aggregation, device, batch_size)
    rewards = model.rewards([_item(s, info, prompt) for s, info in zip(solutions, infos, strict=True)])
    if outcome_weight > 0:
        outcomes = [outcome_score(None, s, t, info) for s, t, info in zip(solutions, truths, infos, strict=True)]
        rewards = [(1 - outcome_weight) * r + outcome_weight * o for r, o in zip(rewards, outcomes, strict=True)]
    return rewards if batched else rewards[0]
