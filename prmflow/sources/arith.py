"""The embedded ``arith`` domain as an input: generated problems (no file), and their exact gold.

A generated problem travels as a Problem whose metadata holds its reference program, so any stage
(on any worker) can rebuild it and run the step checker on a trajectory: that is what gives every
arith step a ``gold_label`` and every trajectory a ``gold_first_error``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from prmflow.schemas import Problem, Trajectory
from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, field_value
from prmflow.sources.datasets import make_problem


def arith_raw_records(count: int, seed: int) -> Iterator[RawRecord]:
    from prmflow.domains.arith import generate_problems

    source = f"arith:seed={seed}"
    for i, p in enumerate(generate_problems(count, seed)):
        yield RawRecord(source, i, json.dumps(to_json(p)), size=0)


def to_json(p) -> dict:
    return {
        "id": p.problem_id, "prompt": p.prompt, "answer": p.answer, "quantities": list(p.quantities),
        "distractors": list(p.distractors),
        "program": [[s.op, [s.left.source, s.left.index], [s.right.source, s.right.index], s.value] for s in p.program],
    }


def from_json(d: dict):
    from prmflow.domains.arith import ArithProblem, Operand, ProgramStep

    return ArithProblem(
        problem_id=d["id"], prompt=d["prompt"], answer=d["answer"], quantities=tuple(d["quantities"]),
        distractors=tuple(d["distractors"]),
        program=tuple(ProgramStep(op, Operand(*left), Operand(*right), value) for op, left, right, value in d["program"]),
    )


def parse_arith(obj: dict, raw: RawRecord, spec) -> Parsed:
    try:
        p = from_json(obj)
    except (KeyError, TypeError, ValueError) as e:
        raise BadRecord("bad_value", f"not an arith problem: {e}") from None
    field_value(obj, "prompt", str)
    problem = make_problem(
        spec, raw, p.prompt, reference_answer=str(p.answer), demonstration=p.demonstration,
        demonstration_steps=p.steps, metadata={"arith": obj},
    )
    drafts = (Draft(steps=p.steps, origin="demonstration", generator="arith-reference"),) if spec.import_solutions else ()
    return Parsed(problem, drafts)


def arith_gold(problem: Problem, trajectory: Trajectory) -> Trajectory:
    """Exact truth from the checker: per-step correctness (each step judged by the checker's rules,
    see prmflow.domains.arith.checker), the first error, and whether the answer is right."""
    from prmflow.domains.arith import check_steps

    meta = problem.metadata if isinstance(problem.metadata, dict) else json.loads(problem.metadata or "{}")
    result = check_steps(from_json(meta["arith"]), list(trajectory.steps))
    return dataclasses.replace(
        trajectory,
        gold_step_labels=tuple(result.float_labels),
        gold_first_error=result.first_error_index,
        gold_outcome=1.0 if result.answer_correct else 0.0,
    )


#: domain -> function that adds exact gold to a trajectory of that domain
GOLD = {"arith": arith_gold}
