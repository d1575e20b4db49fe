"""Exact step-level truth for solutions to :class:`~prmflow.domains.arith.problems.ArithProblem`.

Every non-empty line of a solution is a step, and every step gets a verdict. The rules, and why:

**Line roles.** A line is classified by its text alone:

* *answer*: the whole line is ``The answer is N`` (case-insensitive; ``The final answer is``,
  a leading ``So``, a trailing ``.``, ``:`` and ``$`` tolerated);
* *equation*: the line holds exactly one ``=`` and one binary equation ``a op b = c``, possibly
  inside prose (``So she has 12 + 5 = 17 apples.``). Numbers may be negative or decimal;
  ``op`` is ``+ - * /`` (also ``x × ÷ −``);
* *malformed*: any other line with an ``=`` (chains like ``2 + 3 + 4 = 9``, ``x = 5``), with
  an arithmetic expression but no ``=`` (``19 - 11 - 15``), with no word at all (a fragment such
  as ``23 -`` or a bare ``4``), or with ``answer is`` (``The answer is twelve``): math the checker
  cannot verify, so it is *wrong*.
  The tiny model's format is one binary step per line; a PRM should learn that other shapes are
  not steps this domain can vouch for;
* *prose*: any other line with a word in it (``Let's add them up.``, ``Ava has 12 apples.``).
  Prose is **neutral: a step labelled correct**. It neither adds values nor makes a checkable
  claim; numbers in prose are not read. Keeping prose as steps (rather than dropping it) keeps
  labels aligned one-to-one with lines.

**Equations.** Let *available* be the problem's stated numbers (distractors included) plus the
result ``c`` of every earlier equation line of this solution, correct or not. An equation is
correct iff all three hold:

1. *arithmetic*: ``a op b == c`` exactly (rationals; ``7 / 2 = 3`` is wrong, ``7 / 2 = 3.5``
   right, division by zero wrong);
2. *availability*: ``a`` and ``b`` are available values (operands are identified by value: the
   solver cannot say *which* 12 it meant, so any available 12 will do);
3. *on path*: the step computes a sub-expression of the reference expression, up to
   associativity and commutativity. Precisely: the reference program is flattened into groups:
   maximal chains of ``+``/``-`` (terms with signs) or of ``*``/``/`` (factors with exponents
   +-1); a step result used by two later steps, or whose parent has the other kind, closes its
   own group and is one term of its parent. A *partial* of a group is the value of any non-empty
   subset of its terms (``a - b - c`` has partials ``a - b``, ``b + c`` as ``-(b + c)``, ...). The
   step is on path iff one group of the step's kind has partials ``p, q, r`` with ``p``, ``q``
   disjoint, ``r = p ∪ q``, and ``a ≅ p``, ``b ≅ q``, ``c ≅ r``, where ``≅`` is equality up to
   sign for sums and up to reciprocal for products (so ``b + c`` in ``a - b - c`` and ``b * c``
   in ``a / b / c`` count). This accepts any reordering a solver may choose (``(a + c) + b`` for
   ``(a + b) + c``) and rejects distributivity rewrites (``a*c + b*c`` for ``(a + b) * c``), which
   this domain's demonstrations never use.

**Final line.** An answer line ``The answer is N`` is correct iff ``N`` equals the true answer and
``N`` is available (written as a result earlier, or stated): the answer must follow from the page,
so a bare correct guess after a skipped computation is wrong (``unsupported_answer``).

**After the first error.** Every step is judged by the same rules, independently of earlier
mistakes: an erroneous result stays *available*, but its value is (almost always) no partial of
the reference, so steps built on it are wrong (``propagated``); a step that recovers by recomputing
from true values is correct again. ``labels`` is therefore the *local* truth of each step, which
is what a PRM scoring one step given its prefix needs to see, and which keeps the information of
self-corrections. The PRM800K/Math-Shepherd convention (everything from the first error on is
wrong) is ``prefix_labels``; ``first_error_index`` serves ProcessBench-style evaluation. A step's
truth depends only on the values it uses, never on how they were derived: after ``15 + 4 = 17``
(wrong) with true answer 17, ``The answer is 17`` is correct in ``labels`` (and wrong in
``prefix_labels``).

**Missing final line.** No answer line is not itself an error of any step: ``first_error_index``
stays ``-1`` when the lines present are all correct, while ``final_line_present`` is ``False`` and
``solved`` is ``False``.

Error kinds (``StepVerdict.error``), checked in this order for equations: ``arithmetic``;
``unknown_operand`` (an operand neither stated nor derived, e.g. a value computed "in the head");
``wrong_operation`` (operands form a valid pair, but the operator or result does not combine them
as the reference does); ``propagated`` (an operand is the result of an earlier wrong step and of
no earlier correct one); ``distractor`` (an operand is a distractor's value and no relevant
number's); ``off_path`` (true arithmetic on available values that the reference never computes:
a wrong quantity). Answer lines: ``wrong_answer``, ``unsupported_answer``. Other lines:
``malformed``. A skipped step shows as ``unknown_operand`` (its result used unwritten), as
``off_path`` (``70 + 5`` adding a box count instead of the boxes' content) or, when the solver
stops early, as ``wrong_answer``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

from prmflow.domains.arith.problems import ArithProblem, Operand

Role = Literal["equation", "answer", "prose", "malformed"]
ErrorKind = Literal[
    "arithmetic",
    "unknown_operand",
    "wrong_operation",
    "propagated",
    "distractor",
    "off_path",
    "malformed",
    "wrong_answer",
    "unsupported_answer",
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)

_NUM = r"-?\d+(?:\.\d+)?"
_EQUATION = re.compile(
    rf"(?<![\w.])({_NUM})\s*([-+*/x×÷−])\s*({_NUM})\s*=\s*({_NUM})(?!\w|\.\d)"
)
_ANSWER = re.compile(rf"(?i)\s*(?:so,?\s+)?the\s+(?:final\s+)?answer\s+is\s*:?\s*\$?\s*({_NUM})\s*[.!]?\s*")
_CHAIN_BEFORE = re.compile(r"(?:[-+*/×÷−=(]|\d|\d\s*x)\s*$")
_CHAIN_AFTER = re.compile(r"\s*(?:[-+*/×÷−x)]\s*\d|\))")
_LETTER = re.compile(r"[^\W\d_]")
_EXPRESSION = re.compile(r"\d\s*[-+*/×÷−x]\s*-?\d")
_ANSWER_HINT = re.compile(r"(?i)\banswer\s+is\b")
_OP_ALIASES = {"+": "+", "-": "-", "−": "-", "*": "*", "x": "*", "×": "*", "/": "/", "÷": "/"}


@dataclass(frozen=True)
class Equation:
    """A parsed ``left op right = result`` line; ``op`` normalised to one of ``+ - * /``."""

    left: Fraction
    op: str
    right: Fraction
    result: Fraction

    @property
    def arithmetic_ok(self) -> bool:
        if self.op == "/" and self.right == 0:
            return False
        return _apply(self.op, self.left, self.right) == self.result


@dataclass(frozen=True)
class StepVerdict:
    """The truth of one step (line) of a solution, and why it is wrong when it is."""

    index: int
    text: str
    role: Role
    correct: bool
    error: ErrorKind | None = None
    equation: Equation | None = None
    answer: Fraction | None = None


@dataclass(frozen=True)
class CheckResult:
    """Per-step verdicts of one solution; see the module docstring for the rules."""

    verdicts: tuple[StepVerdict, ...]
    first_error_index: int
    final_answer: int | None
    final_line_present: bool
    answer_correct: bool

    @property
    def steps(self) -> list[str]:
        return [v.text for v in self.verdicts]

    @property
    def labels(self) -> list[bool]:
        """Local truth of each step (steps after the first error judged on their own)."""
        return [v.correct for v in self.verdicts]

    @property
    def prefix_labels(self) -> list[bool]:
        """True up to the first error, False from it on (the PRM800K/Math-Shepherd convention)."""
        if self.first_error_index < 0:
            return [True] * len(self.verdicts)
        return [i < self.first_error_index for i in range(len(self.verdicts))]

    @property
    def float_labels(self) -> list[float]:
        return [1.0 if ok else 0.0 for ok in self.labels]

    @property
    def first_error(self) -> StepVerdict | None:
        return None if self.first_error_index < 0 else self.verdicts[self.first_error_index]

    @property
    def well_formed(self) -> bool:
        """The trained format: equation lines only, then exactly one answer line, last."""
        return self.final_line_present and all(v.role == "equation" for v in self.verdicts[:-1])

    @property
    def solved(self) -> bool:
        """Right final answer, a final line, and no wrong step anywhere."""
        return self.answer_correct and self.final_line_present and self.first_error_index < 0


def split_steps(solution_text: str) -> list[str]:
    """The steps of a solution: its non-empty lines, stripped."""
    return [line.strip() for line in solution_text.splitlines() if line.strip()]


def parse_line(line: str) -> tuple[Role, Equation | None, Fraction | None]:
    """Classify one line (see the module docstring) and parse what it claims."""
    answer = _ANSWER.fullmatch(line)
    if answer:
        return "answer", None, Fraction(answer.group(1))
    if _ANSWER_HINT.search(line):
        return "malformed", None, None
    if "=" not in line:
        is_prose = _LETTER.search(line) and not _EXPRESSION.search(line)
        return ("prose" if is_prose or not line.strip() else "malformed"), None, None
    matches = list(_EQUATION.finditer(line))
    if line.count("=") != 1 or len(matches) != 1:
        return "malformed", None, None
    match = matches[0]
    # "2 + 3 + 4 = 9" contains the binary "3 + 4 = 9": a chain, not a binary step.
    if _CHAIN_BEFORE.search(line[: match.start()]) or _CHAIN_AFTER.match(line[match.end() :]):
        return "malformed", None, None
    left, op, right, result = match.groups()
    return "equation", Equation(Fraction(left), _OP_ALIASES[op], Fraction(right), Fraction(result)), None


def check_solution(problem: ArithProblem, solution_text: str) -> CheckResult:
    """Verdicts for every non-empty line of ``solution_text`` (see the module docstring)."""
    if not isinstance(solution_text, str):
        raise TypeError(f"solution_text must be a str, got {type(solution_text).__name__}")
    return check_steps(problem, split_steps(solution_text))


def check_steps(problem: ArithProblem, steps: Sequence[str]) -> CheckResult:
    """Verdicts for steps split by someone else (e.g. a pipeline's own splitter).

    A step spanning several lines is judged line by line in order; it is correct iff all its
    lines are, and reports the first wrong line's role and error. A blank step is neutral prose,
    so the verdicts stay aligned with ``steps`` one-to-one.
    """
    if isinstance(steps, str):
        raise TypeError("steps must be a sequence of step strings, got one str; use check_solution for raw text")
    reference = _reference(problem)
    state = _State(problem)
    verdicts = []
    last_line: StepVerdict | None = None
    for index, step in enumerate(steps):
        lines = split_steps(step) or [step.strip()]
        line_verdicts = [state.judge(line, reference) for line in lines]
        if lines != [""]:
            last_line = line_verdicts[-1]
        bad = next((v for v in line_verdicts if not v.correct), None)
        main = bad or line_verdicts[-1]
        verdicts.append(
            StepVerdict(
                index=index, text=step.strip(), role=main.role, correct=bad is None, error=main.error,
                equation=main.equation, answer=main.answer,
            )
        )  # fmt: skip
    first_error = next((v.index for v in verdicts if not v.correct), -1)
    answers = [v.answer for v in verdicts if v.answer is not None]
    final = answers[-1] if answers else None
    final_answer = int(final) if final is not None and final.denominator == 1 else None
    return CheckResult(
        verdicts=tuple(verdicts),
        first_error_index=first_error,
        final_answer=final_answer,
        final_line_present=last_line is not None and last_line.role == "answer",
        answer_correct=final_answer == problem.answer,
    )


# --------------------------------------------------------------------------------------------
# Reference structure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """A flattened chain of one operator kind: terms (value, sign) with sign +1/-1."""

    kind: Literal["sum", "prod"]
    terms: tuple[tuple[Fraction, int], ...]

    def partials(self) -> dict[frozenset[int], Fraction]:
        out: dict[frozenset[int], Fraction] = {}
        n = len(self.terms)
        for size in range(1, n + 1):
            for subset in itertools.combinations(range(n), size):
                if self.kind == "sum":
                    value = sum((self.terms[i][0] * self.terms[i][1] for i in subset), Fraction(0))
                else:
                    value = Fraction(1)
                    for i in subset:
                        v, e = self.terms[i]
                        value = value * v if e > 0 else value / v
                out[frozenset(subset)] = value
        return out


@dataclass(frozen=True)
class _Reference:
    """Partials of every group, indexed for the on-path test."""

    groups: tuple[tuple[str, dict[frozenset[int], Fraction]], ...]
    pair_values: frozenset[tuple[str, Fraction, Fraction]]  # (kind, key(p), key(q)) of disjoint partials

    def on_path(self, eq: Equation) -> bool:
        kind = "sum" if eq.op in "+-" else "prod"
        for group_kind, partials in self.groups:
            if group_kind != kind:
                continue
            for r_set, r_value in partials.items():
                if len(r_set) < 2 or not _same(kind, eq.result, r_value):
                    continue
                for size in range(1, len(r_set)):
                    for p in itertools.combinations(sorted(r_set), size):
                        p_set = frozenset(p)
                        if _same(kind, eq.left, partials[p_set]) and _same(kind, eq.right, partials[r_set - p_set]):
                            return True
        return False

    def valid_pair(self, eq: Equation) -> bool:
        """Operands that some group combines (with whichever operator): the op is what is wrong."""
        for kind in ("sum", "prod"):
            if (kind, _key(kind, eq.left), _key(kind, eq.right)) in self.pair_values:
                return True
        return False


def _key(kind: str, x: Fraction) -> Fraction:
    """Canonical representative of ``x`` under ``≅``: |x| for sums, max(x, 1/x) for products."""
    if kind == "sum":
        return abs(x)
    if x == 0:
        return x
    return max(abs(x), 1 / abs(x)) * (1 if x > 0 else -1)


def _same(kind: str, x: Fraction, value: Fraction) -> bool:
    if kind == "sum":
        return x == value or x == -value
    return x == value or (value != 0 and x == 1 / value)


def _apply(op: str, left: Fraction, right: Fraction) -> Fraction:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right


def _reference(problem: ArithProblem) -> _Reference:
    """Flatten the program into groups (see the module docstring, rule 3)."""
    program = problem.program
    kind_of = ["sum" if s.op in "+-" else "prod" for s in program]
    uses: dict[int, list[int]] = {}
    for i, s in enumerate(program):
        for o in (s.left, s.right):
            if o.source == "step":
                uses.setdefault(o.index, []).append(i)
    roots = {
        i
        for i in range(len(program))
        if i == len(program) - 1 or len(uses.get(i, [])) != 1 or kind_of[uses[i][0]] != kind_of[i]
    }

    def terms(i: int, sign: int) -> list[tuple[Fraction, int]]:
        s = program[i]
        out = []
        for operand, side_sign in ((s.left, 1), (s.right, -1 if s.op in "-/" else 1)):
            if operand.source == "step" and operand.index not in roots:
                out.extend(terms(operand.index, sign * side_sign))
            else:
                out.append((Fraction(_value(problem, operand)), sign * side_sign))
        return out

    groups = []
    pairs = set()
    for root in sorted(roots):
        group = _Group(kind_of[root], tuple(terms(root, 1)))
        partials = group.partials()
        groups.append((group.kind, partials))
        for (p_set, p_val), (q_set, q_val) in itertools.product(partials.items(), repeat=2):
            if not p_set & q_set:
                pairs.add((group.kind, _key(group.kind, p_val), _key(group.kind, q_val)))
    return _Reference(groups=tuple(groups), pair_values=frozenset(pairs))


def _value(problem: ArithProblem, operand: Operand) -> int:
    return problem.operand_value(operand)


class _State:
    """What a solution has made available so far, and the problem's stated numbers."""

    def __init__(self, problem: ArithProblem) -> None:
        self.problem = problem
        self.stated = {Fraction(v) for v in problem.quantities}
        relevant = {Fraction(v) for v in problem.relevant_quantities}
        self.distractor_only = {Fraction(problem.quantities[i]) for i in problem.distractors} - relevant
        self.derived_ok: set[Fraction] = set()
        self.derived_bad: set[Fraction] = set()

    def available(self, x: Fraction) -> bool:
        return x in self.stated or x in self.derived_ok or x in self.derived_bad

    def judge(self, line: str, reference: _Reference) -> StepVerdict:
        role, eq, answer = parse_line(line)
        if role == "prose":
            return StepVerdict(0, line, role, True)
        if role == "malformed":
            return StepVerdict(0, line, role, False, "malformed")
        if role == "answer":
            assert answer is not None
            if answer != self.problem.answer:
                return StepVerdict(0, line, role, False, "wrong_answer", answer=answer)
            if not self.available(answer):
                return StepVerdict(0, line, role, False, "unsupported_answer", answer=answer)
            return StepVerdict(0, line, role, True, answer=answer)
        assert eq is not None
        error = self._equation_error(eq, reference)
        (self.derived_bad if error else self.derived_ok).add(eq.result)
        return StepVerdict(0, line, role, error is None, error, equation=eq)

    def _equation_error(self, eq: Equation, reference: _Reference) -> ErrorKind | None:
        if not eq.arithmetic_ok:
            return "arithmetic"
        operands = (eq.left, eq.right)
        if not all(self.available(x) for x in operands):
            return "unknown_operand"
        if reference.on_path(eq):
            return None
        if reference.valid_pair(eq):
            return "wrong_operation"
        # A value the solver got wrongly and never derived correctly: it is reusing its own error
        # (even if the value happens to equal a stated number too).
        if any(x in self.derived_bad and x not in self.derived_ok for x in operands):
            return "propagated"
        if any(x in self.distractor_only and x not in self.derived_ok for x in operands):
            return "distractor"
        return "off_path"
