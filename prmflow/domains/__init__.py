"""Problem domains whose truth prmflow can compute itself, without a dataset or a grader.

Each subpackage generates problems and checks solutions step by step (``arith``: generated
arithmetic word problems). Subpackages are pure Python so Beam workers import them cheaply.
:func:`attach_gold` gives a trajectory of such a domain its exact step truth.
"""

from __future__ import annotations

from prmflow.schemas import Problem, Trajectory
from prmflow.schemas.base import replace


def _arith_gold(problem: Problem, trajectory: Trajectory) -> Trajectory | None:
    from prmflow.domains.arith.gold import gold_of, problem_of

    arith = problem_of(problem.metadata)
    if arith is None:
        return None
    result = gold_of(arith, list(trajectory.steps))
    return replace(
        trajectory,
        gold_step_labels=tuple(result.float_labels),
        gold_first_error=result.first_error_index,
        gold_outcome=1.0 if result.answer_correct else 0.0,
    )


#: domain -> function adding exact gold to a trajectory of that domain (None: the problem lacks what
#: the domain needs to compute it)
GOLD = {"arith": _arith_gold}


def attach_gold(problem: Problem, trajectory: Trajectory) -> tuple[Trajectory, str]:
    """The trajectory with its domain's exact gold, and what happened: ``attached``, ``none`` (the
    domain computes no gold) or ``unavailable`` (it would, but the problem does not carry it)."""
    gold = GOLD.get(problem.domain)
    if gold is None:
        return trajectory, "none"
    with_gold = gold(problem, trajectory)
    return (trajectory, "unavailable") if with_gold is None else (with_gold, "attached")


__all__ = ["GOLD", "attach_gold"]
