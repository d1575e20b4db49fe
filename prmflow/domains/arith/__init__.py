"""The embedded ``arith`` domain: generated multi-step arithmetic word problems with exact step truth.

Everything a pipeline needs without a dataset or a grader model: :func:`generate_problems`
(seeded), :func:`format_prompt` (the template the shipped ``builtin:arith-tiny`` policy was
trained on), and :func:`check_solution`, which labels every line of any solution text. The
labelling rules (operands, steps after the first error, prose lines) are documented in
:mod:`prmflow.domains.arith.checker`. Pure Python: importing this pulls in neither torch nor Beam.
"""

from prmflow.domains.arith.checker import (
    ERROR_KINDS,
    CheckResult,
    Equation,
    ErrorKind,
    StepVerdict,
    check_solution,
    check_steps,
    parse_line,
    split_steps,
)
from prmflow.domains.arith.problems import (
    ANSWER_TEMPLATE,
    MAX_OPS,
    MAX_VALUE,
    MIN_OPS,
    MIN_VALUE,
    PROMPT_TEMPLATE,
    ArithProblem,
    Operand,
    ProgramStep,
    apply_op,
    format_answer,
    format_prompt,
    generate_problems,
)

DOMAIN = "arith"
BUILTIN_MODEL = "builtin:arith-tiny"
"""The policy shipped for this domain (resolve with ``prmflow.models.resolve_model_path``)."""

__all__ = [
    "ANSWER_TEMPLATE",
    "BUILTIN_MODEL",
    "DOMAIN",
    "ERROR_KINDS",
    "MAX_OPS",
    "MAX_VALUE",
    "MIN_OPS",
    "MIN_VALUE",
    "PROMPT_TEMPLATE",
    "ArithProblem",
    "CheckResult",
    "Equation",
    "ErrorKind",
    "Operand",
    "ProgramStep",
    "StepVerdict",
    "apply_op",
    "check_solution",
    "check_steps",
    "format_answer",
    "format_prompt",
    "generate_problems",
    "parse_line",
    "split_steps",
]
