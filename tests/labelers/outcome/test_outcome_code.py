"""The ``code`` outcome labeler: HumanEval's canonical solutions pass, systematic mutants fail, and
solutions that cheat or break are judged by status, never by what they print."""

from __future__ import annotations

import ast
import gzip
import json

import pytest

from prmflow.labelers.outcome import LABELERS, make_outcome_labeler, parse_options, reference_of
from prmflow.labelers.outcome.code import (
    ALLOW_UNSANDBOXED_ENV,
    CodeConfig,
    CodeLabeler,
    build_program,
    humaneval_tests,
    parse_tests,
    solution_code,
)
from prmflow.sources.humaneval import solution_steps


@pytest.fixture(scope="module")
def humaneval(shared_data):
    with gzip.open(shared_data / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 164
    return rows


@pytest.fixture(scope="module")
def labeler():
    return CodeLabeler(CodeConfig(timeout_s=20))


def _canonical_text(row) -> str:
    # What a run over HumanEval judges: the demonstration's steps joined as the trajectory text.
    return "\n".join(solution_steps(row["canonical_solution"]))


def test_all_164_canonical_solutions_pass(humaneval, labeler):
    pairs = [(_canonical_text(r), humaneval_tests(r["prompt"], r["test"], r["entry_point"])) for r in humaneval]
    outcomes = labeler.label_many(pairs)
    failed = [(r["task_id"], o.status, o.detail) for r, o in zip(humaneval, outcomes, strict=True) if o.value != 1.0]
    assert failed == []
    assert {o.status for o in outcomes} == {"ok"}


_MUTANT = '''\
def __mutant__(value):
    """A wrong value of the same kind, so every equality or tolerance check sees the difference."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "?"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    return "mutant" if value is None else None


'''


class _WrongReturns(ast.NodeTransformer):
    """Wraps every return value of the entry function (not of functions nested in it) in __mutant__."""

    def __init__(self) -> None:
        self.depth = 0
        self.count = 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        if self.depth == 1:
            self.generic_visit(node)
        self.depth -= 1
        return node

    visit_Lambda = visit_FunctionDef

    def visit_Return(self, node):
        self.count += 1
        value = node.value or ast.Constant(None)
        return ast.copy_location(ast.Return(ast.Call(ast.Name("__mutant__", ast.Load()), [value], [])), node)


def wrong_return_mutant(row) -> str:
    """The canonical solution as a full function with every return value made wrong."""
    tree = ast.parse(row["prompt"] + row["canonical_solution"])
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == row["entry_point"])
    mutator = _WrongReturns()
    mutator.visit(fn)
    assert mutator.count > 0, row["task_id"]
    return _MUTANT + ast.unparse(ast.fix_missing_locations(fn))


def test_every_problem_has_a_mutant_that_fails(humaneval, labeler):
    pairs = [(wrong_return_mutant(r), humaneval_tests(r["prompt"], r["test"], r["entry_point"])) for r in humaneval]
    outcomes = labeler.label_many(pairs)
    survived = [r["task_id"] for r, o in zip(humaneval, outcomes, strict=True) if o.value != 0.0]
    assert survived == []
    # They fail on the tests' assertions, not by crashing or hanging.
    assert {o.status for o in outcomes} == {"ok"}


def test_partial_credit_on_humaneval_counts_check_statements(humaneval):
    row = next(r for r in humaneval if r["task_id"] == "HumanEval/0")
    tests = humaneval_tests(row["prompt"], row["test"], row["entry_point"])
    partial = CodeLabeler(CodeConfig(partial=True))
    assert partial.label(_canonical_text(row), tests).value == 1.0
    # Always False: right exactly on the checks whose expected value is False.
    n_false = row["test"].count("== False")
    n_asserts = row["test"].count("assert ")
    out = partial.label("    return False\n", tests)
    assert (out.status, out.value) == ("ok", n_false / n_asserts)
    assert CodeLabeler().label("    return False\n", tests).value == 0.0


PLAIN_TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 0\nassert add(-1, 1) == 0\n"


@pytest.mark.parametrize("solution,partial,value,status,detail", [
    ("def add(a, b):\n    return a + b\n", False, 1.0, "ok", None),
    ("def add(a, b):\n    return a + b\n", True, 1.0, "ok", None),
    # right on 3 of 4: all-or-nothing says 0, partial credit 3/4
    ("def add(a, b):\n    return a + b if a >= 0 else 7\n", False, 0.0, "ok", "AssertionError"),
    ("def add(a, b):\n    return a + b if a >= 0 else 7\n", True, 0.75, "ok", "3/4 tests passed"),
    ("def add(a, b) return a + b\n", False, 0.0, "ok", "failed to load: SyntaxError"),
    # A solution that exits before the tests is not a pass, whatever it prints.
    ("import sys\nsys.exit(0)\n", False, 0.0, "ok", "failed to load: SystemExit"),
    ("import os\nos._exit(0)\n", False, 0.0, "crash", "exited before the tests finished"),
    ('import os\nprint(\'{"event": "done", "passed": 4, "total": 4}\')\nos._exit(0)\n', False, 0.0, "crash", None),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", False, 0.0, "crash", "SIGKILL"),
    ("def add(a, b):\n    while True:\n        pass\n", False, 0.0, "timeout", "wall-clock limit"),
    ("print('x' * 10_000_000)\n", False, 0.0, "crash", "output past"),
    ("def add(a, b):\n    return len(bytearray(1 << 40))\n", False, 0.0, "ok", "MemoryError"),
    # Hangs after three passing checks: partial credit keeps what it saw before the timeout.
    ("def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n", True, 0.75, "timeout", "3/4"),
    ("```python\ndef add(a, b):\n    return a + b\n```\nThis adds.", False, 1.0, "ok", None),
    ("", False, 0.0, "no_answer", "empty solution"),
    # a lone surrogate (valid in JSON text, not in UTF-8) in a comment: written as "?", judged as usual
    ("def add(a, b):\n    return a + b  # \ud800\n", False, 1.0, "ok", None),
])
def test_verdicts(solution, partial, value, status, detail):
    labeler = CodeLabeler(CodeConfig(timeout_s=5, partial=partial, max_output_bytes=1 << 16, memory_mb=256))
    out = labeler.label(solution, PLAIN_TESTS)
    assert (out.value, out.status, out.source) == (value, status, "code"), out
    if detail is None:
        assert out.detail is None or status != "ok", out
    else:
        assert detail in out.detail, out


ALWAYS_EQUAL = "class Eq:\n    def __eq__(self, other):\n        return True\n\n"
GUARDED_TESTS = json.dumps({"test": PLAIN_TESTS, "entry_point": "add"})


@pytest.mark.parametrize("solution,plain_returns,value,detail", [
    (ALWAYS_EQUAL + "def add(a, b):\n    return Eq()\n", True, 0.0, "TypeError: the solution's add returned a solution.Eq, not plain data"),
    (ALWAYS_EQUAL + "def add(a, b):\n    return [Eq()]\n", True, 0.0, "returned a solution.Eq"),
    ("from unittest.mock import ANY\ndef add(a, b):\n    return ANY\n", True, 0.0, "unittest.mock._ANY"),
    ("class I(int):\n    pass\ndef add(a, b):\n    return I(a + b)\n", True, 0.0, "returned a solution.I"),
    ("def add(a, b):\n    return a + b\n", True, 1.0, None),
    # With the guard off a builtin's subclass crosses as its builtin value, made by the builtin's own
    # methods: a right one passes, an always-equal one is still no value at all.
    ("class I(int):\n    pass\ndef add(a, b):\n    return I(a + b)\n", False, 1.0, None),
    ("class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
     "def add(a, b):\n    return I(7)\n", False, 0.0, "AssertionError"),
    (ALWAYS_EQUAL + "def add(a, b):\n    return Eq()\n", False, 0.0, "returned a solution.Eq, not plain data"),
])
def test_always_equal_results_do_not_pass(solution, plain_returns, value, detail):
    # With or without an entry point named: no object crosses from the solution to the tests.
    for tests in (GUARDED_TESTS, PLAIN_TESTS):
        out = CodeLabeler(CodeConfig(timeout_s=5, plain_returns=plain_returns)).label(solution, tests)
        assert (out.value, out.status) == (value, "ok"), out
        assert detail is None or detail in out.detail, out


@pytest.mark.parametrize("reference,status,detail", [
    (None, "no_reference", "no tests"),
    ("  ", "no_reference", "no tests"),
    ('{"test": ', "parse_error", "look like JSON"),
    ('{"test": "assert 1", "setup": ""}', "parse_error", "unknown keys ['setup']"),
    ('{"prelude": "x = 1"}', "parse_error", "tests.test must be a non-empty string"),
    ('{"test": "assert 1", "entry_point": "not a name"}', "parse_error", "entry_point must be a Python identifier"),
    ("assert (", "parse_error", "the test program does not compile"),
])
def test_bad_references(reference, status, detail):
    out = CodeLabeler(CodeConfig(timeout_s=5)).label("x = 1\n", reference)
    assert (out.value, out.status) == (None, status) and detail in out.detail, out


def test_program_assembly():
    tests = parse_tests(humaneval_tests("def f(x):\n    \"\"\"doc\"\"\"\n", "def check(c):\n    assert c(1) == 2\n", "f"))
    assert tests.entry_point == "f" and tests.test.endswith("check(f)\n")
    # A body continues the prompt; a full function replaces the stub, keeping the prelude's imports.
    assert build_program("    return x + 1\n", tests) == 'def f(x):\n    """doc"""\n    return x + 1\n'
    assert build_program("def f(x):\n    return x + 1", tests).endswith("\n\ndef f(x):\n    return x + 1")
    fenced = "Here:\n```python\ndef g():\n    pass\n```\nand\n```python\ndef f(x):\n    return 2\n```\n```\nmore\n```"
    assert solution_code(fenced, "f") == "def f(x):\n    return 2\n"
    assert solution_code("no fences", "f") == "no fences"


@pytest.mark.parametrize("options,message", [
    ({"timeout_s": 0}, "outcome.options.timeout_s must be a positive number, got 0"),
    ({"timeout_s": "10"}, "outcome.options.timeout_s must be a positive number, got '10'"),
    ({"memory_mb": 10.5}, "outcome.options.memory_mb must be a positive integer, got 10.5"),
    ({"memory_mb": 32}, "outcome.options.memory_mb must be >= 64 (Python needs it to start), got 32"),
    ({"max_processes": 0}, "outcome.options.max_processes must be a positive integer, got 0"),
    ({"max_output_bytes": True}, "outcome.options.max_output_bytes must be a positive integer, got True"),
    ({"file_size_mb": -1}, "outcome.options.file_size_mb must be a positive integer, got -1"),
    ({"workers": 0}, "outcome.options.workers must be a positive integer, got 0"),
    ({"partial": "yes"}, "outcome.options.partial must be a boolean, got 'yes'"),
    ({"plain_returns": 1}, "outcome.options.plain_returns must be a boolean, got 1"),
    ({"sandbox": "docker"}, "outcome.options.sandbox must be 'bwrap' or 'none', got 'docker'"),
    ({"sandbox": "none"}, f"outcome.options.sandbox must be 'bwrap' unless {ALLOW_UNSANDBOXED_ENV}=1 is set"),
])
def test_options_are_validated_at_load(monkeypatch, options, message):
    monkeypatch.delenv(ALLOW_UNSANDBOXED_ENV, raising=False)
    with pytest.raises(ValueError) as e:
        parse_options("code", options)
    assert str(e.value).startswith(message)


def test_unsandboxed_needs_the_acknowledgement(monkeypatch):
    monkeypatch.setenv(ALLOW_UNSANDBOXED_ENV, "1")
    labeler = make_outcome_labeler("code", {"sandbox": "none", "timeout_s": 5})
    out = labeler.label("def add(a, b):\n    return a + b\n", PLAIN_TESTS)
    assert (out.value, out.status) == (1.0, "ok")


def test_registered_with_tests_as_its_reference():
    assert LABELERS["code"].reference_field == "tests"

    class P:
        tests = "assert True"
        reference_answer = "4"

    assert reference_of("code", P()) == "assert True"


# Right solutions the plain-data channel must keep passing: what tests commonly do with the function.
@pytest.mark.parametrize("solution,tests,plain_returns", [
    # in-place changes to an argument reach the tests' copy
    ("def sort_in_place(xs):\n    xs.sort()\n",
     "xs = [3, 1, 2]\nassert sort_in_place(xs) is None\nassert xs == [1, 2, 3]\n", True),
    # an exception the tests expect, with its message
    ("def root(x):\n    if x < 0:\n        raise ValueError('negative: %d' % x)\n    return x ** 0.5\n",
     "try:\n    root(-1)\n    assert False\nexcept ValueError as e:\n    assert str(e) == 'negative: -1'\n"
     "assert root(4) == 2.0\n", True),
    ("def pick(d, k):\n    return d[k]\n",
     "try:\n    pick({}, 'x')\nexcept KeyError as e:\n    assert e.args == ('x',)\nelse:\n    assert False\n", True),
    # every plain type, nested, with types kept apart
    ("def shapes():\n    return [1, 1.0, True, None, 'a', b'b', (1, 2), {3}, frozenset({4}), {5: [6]}, 2j, 10 ** 5000]\n",
     "r = shapes()\nassert r == [1, 1.0, True, None, 'a', b'b', (1, 2), {3}, frozenset({4}), {5: [6]}, 2j, 10 ** 5000]\n"
     "assert [type(x) for x in r][:4] == [int, float, bool, type(None)]\n", True),
    # the solution's helpers and constants, and a module it imported, are there for the tests
    ("import math\nLIMIT = 10\ndef helper(x):\n    return x * 2\ndef f(x):\n    return helper(x) + LIMIT\n",
     "assert f(1) == 12 and helper(3) == 6 and LIMIT == 10 and math.isclose(f(0.5), 11.0)\n", True),
    # keyword arguments, recursion, many calls
    ("def fib(n, *, memo=None):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
     "for i in range(200):\n    assert fib(i % 15, memo=None) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377][i % 15]\n",
     True),
    # a namedtuple crosses as its tuple when plain_returns is off
    ("import collections\nP = collections.namedtuple('P', 'x y')\ndef point():\n    return P(1, 2)\n",
     "assert point() == (1, 2)\n", False),
])
def test_right_solutions_pass_through_the_channel(solution, tests, plain_returns):
    out = CodeLabeler(CodeConfig(timeout_s=10, plain_returns=plain_returns)).label(solution, tests)
    assert (out.value, out.status) == (1.0, "ok"), out


def test_the_prelude_is_the_judges_own(humaneval):
    # HumanEval/32's tests call the prompt's poly: a solution that redefines it gains nothing, the
    # canonical one still passes.
    row = next(r for r in humaneval if r["task_id"] == "HumanEval/32")
    tests = humaneval_tests(row["prompt"], row["test"], row["entry_point"])
    cheat = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 0.0\n"
    assert CodeLabeler(CodeConfig(timeout_s=20)).label(cheat, tests).value == 0.0
    assert CodeLabeler(CodeConfig(timeout_s=20)).label(_canonical_text(row), tests).value == 1.0
