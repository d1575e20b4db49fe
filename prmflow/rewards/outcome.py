"""The outcome reward: verl's custom reward function for ``prmflow export --format verl`` rows.

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response
(``reward.custom_reward_function.path=pkg://prmflow.rewards.outcome``, ``name=compute_score``). The
verdict is the run's own outcome labeler (``extra_info.outcome_labeler``: math, numeric, exact or code,
with ``extra_info.outcome_options``), so RL rewards the same notion of right that labeled the data:
1.0 for a right final answer, 0.0 for a wrong one or none (code may give partial credit when the run
configured it). A start-state row's response continues ``extra_info.prefix``; the two are judged
together, as the run judged its rollouts from that state.

A labeler is built once per worker process and per (name, options), then reused.
"""

from __future__ import annotations

import atexit
import json
from typing import Any

from prmflow.labelers.outcome import make_outcome_labeler

DEFAULT_LABELER = "math"
_LABELERS: dict[tuple[str, str], Any] = {}


def labeler_for(name: str, options_json: str | None = None):
    """The cached labeler ``name`` with its options (a JSON object or null)."""
    key = (name, options_json or "null")
    if key not in _LABELERS:
        _LABELERS[key] = make_outcome_labeler(name, json.loads(key[1]))
    return _LABELERS[key]


def _close_all() -> None:
    for labeler in _LABELERS.values():
        labeler.close()
    _LABELERS.clear()


atexit.register(_close_all)


def full_solution(solution_str: str, extra_info: dict | None) -> str:
    """The response, after its start state's prefix when the row continues one."""
    info = extra_info or {}
    prefix = info.get("prefix")
    if info.get("continue_final_message") and prefix:
        return prefix.rstrip("\n") + "\n" + solution_str.lstrip("\n")
    return solution_str


def compute_score(data_source: str | None = None, solution_str: str = "", ground_truth: str | None = None,
                  extra_info: dict | None = None, labeler: str | None = None, **_: Any) -> float:
    """1.0 right, 0.0 wrong (or no verdict), by the row's outcome labeler; ``labeler`` overrides it
    (``+reward.custom_reward_function.reward_kwargs.labeler=numeric``)."""
    info = extra_info or {}
    name = labeler or info.get("outcome_labeler") or DEFAULT_LABELER
    options = info.get("outcome_options") if name == info.get("outcome_labeler") else None
    outcome = labeler_for(name, options).label(full_solution(solution_str, info), ground_truth)
    return float(outcome.value) if outcome.value is not None else 0.0
