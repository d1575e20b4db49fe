"""HumanEval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): 164 Python
functions to complete from their signature and docstring, each with a ``check`` test function.

The prompt is the problem; the canonical solution (a function body) is the demonstration, one step
per non-blank line with its indentation kept, so the steps joined by newlines are runnable code and
any prefix of them is a place a rollout can continue from. The tests are the prompt as prelude and
``check(<entry_point>)`` (see ``labelers/outcome/code``), self-contained for the ``code`` labeler.
"""

from __future__ import annotations

from prmflow.labelers.outcome.code import humaneval_tests
from prmflow.sources.base import BadRecord, Draft, Parsed, RawRecord, field_value
from prmflow.sources.datasets import make_problem


def solution_steps(code: str) -> tuple[str, ...]:
    """One step per non-blank line, indentation kept, trailing spaces dropped."""
    return tuple(line.rstrip() for line in code.splitlines() if line.strip())


def parse_humaneval(obj: dict, raw: RawRecord, spec) -> Parsed:
    task_id = field_value(obj, "task_id", str)
    prompt = field_value(obj, "prompt", str)
    entry_point = field_value(obj, "entry_point", str)
    test = field_value(obj, "test", str)
    canonical = field_value(obj, "canonical_solution", str, required=False)
    if not entry_point.isidentifier():
        raise BadRecord("bad_value", f"field 'entry_point' must be a Python identifier, got {entry_point!r}")
    if f"def {entry_point}" not in prompt:
        raise BadRecord("bad_value", f"field 'prompt' does not define the entry point {entry_point!r}")
    if "def check" not in test:
        raise BadRecord("bad_value", "field 'test' defines no check(candidate) function")
    steps = solution_steps(canonical) if canonical else ()
    problem = make_problem(
        spec, raw, prompt,
        domain=None,
        tests=humaneval_tests(prompt, test, entry_point),
        demonstration=canonical or None,
        demonstration_steps=steps or None,
        metadata={"task_id": task_id, "entry_point": entry_point},
    )
    drafts = ()
    if steps and spec.import_solutions:
        drafts = (Draft(steps=steps, origin="demonstration", generator="humaneval-canonical", gold_outcome=1.0,
                        gold_first_error=-1),)
    return Parsed(problem, drafts)
