"""The embedded ``arith`` domain as an input: generated problems (no file).

A generated problem travels as a Problem whose metadata holds its reference program
(``prmflow.domains.arith.gold``), so the AttachGold stage can give its trajectories exact gold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, field_value
from prmflow.sources.datasets import make_problem


def arith_raw_records(count: int, seed: int) -> Iterator[RawRecord]:
    from prmflow.domains.arith import generate_problems
    from prmflow.domains.arith.gold import to_json

    source = f"arith:seed={seed}"
    for i, p in enumerate(generate_problems(count, seed)):
        yield RawRecord(source, i, json.dumps(to_json(p)), size=0)


def parse_arith(obj: dict, raw: RawRecord, spec) -> Parsed:
    from prmflow.domains.arith.gold import from_json

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
