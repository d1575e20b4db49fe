"""Rewards for RL trainers from prmflow's own parts: an outcome reward (the run's outcome labeler on the
final answer) and a PRM reward (a prmflow PRM's step scores, aggregated), as verl custom reward
functions and as an HTTP endpoint (``python -m prmflow.rewards.server``). See docs/exports.md."""

from prmflow.rewards.outcome import compute_score as outcome_score
from prmflow.rewards.prm import AGGREGATIONS, PRMReward, aggregate

__all__ = ["AGGREGATIONS", "PRMReward", "aggregate", "outcome_score"]
