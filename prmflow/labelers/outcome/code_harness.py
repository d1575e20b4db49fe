"""The test harness that runs inside the sandbox (standard library only; it is shipped as a file).

``python -I harness.py solution.py test.py PARTIAL [ENTRY_POINT]`` with a nonce on stdin. It runs the solution,
then the test program in the solution's namespace (as HumanEval's own ``execution.py`` does), and
reports on a copy of the original stdout, each line prefixed with the nonce: the solution's own
output goes to stderr, and lines without the nonce are not believed. So a solution that exits early
(``sys.exit(0)``, ``os._exit(0)``) or prints a fake verdict does not pass: only a report that reaches
``done`` does. (Code in the same process could still dig the nonce out of memory; that takes intent,
not an accident of generation, and it still gains nothing against the tests' assertions.)

With PARTIAL=1 the tests are split into units when they are separable: each top-level statement
that holds an ``assert`` is a unit, and a top-level call ``check(candidate)`` of a test function of
one argument is opened up into that function's statements, the argument bound (HumanEval's form).
Other statements are setup and run in order. Each unit passes when it raises nothing.

With ENTRY_POINT (the tests' function under test, with ``plain_returns`` on), the function's return
values must be built of plain builtin values, so an always-equal object cannot pass the asserts.
"""

import os
import sys

# Imported only when the tests are split into units (partial credit): each import costs a fresh
# interpreter milliseconds, and every execution starts one.
ast = None


def _is_test(stmt):
    """A statement that asserts when it runs (a definition holding asserts only defines)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    return _has_assert(stmt)


def _has_assert(node):
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
    return False


def _opens_up(fn):
    """A test function whose body can run statement by statement at module level."""
    a = fn.args
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or len(a.args) != 1 or fn.decorator_list:
        return False
    for stmt in fn.body:
        for sub in ast.walk(stmt):
            if isinstance(sub, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal, ast.Await)):
                return False
    return _has_assert(fn)


def plan_units(tree):
    """[(kind, statement, bind)]: kind is "test" or "setup"; bind is (name, expression) to evaluate first."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    plan = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) else None
        if (
            call is not None and isinstance(call.func, ast.Name) and call.func.id in defs
            and len(call.args) == 1 and not call.keywords and _opens_up(defs[call.func.id])
        ):
            fn = defs[call.func.id]
            plan.append(("setup", None, (fn.args.args[0].arg, call.args[0])))
            for inner in fn.body:
                plan.append(("test" if _is_test(inner) else "setup", inner, None))
        else:
            plan.append(("test" if _is_test(stmt) else "setup", stmt, None))
    return plan


_PLAIN = (int, float, complex, str, bytes, bool, type(None), list, tuple, dict, set, frozenset)
_PLAIN_CHECKED = 100_000  # values looked at per return; past that the rest is trusted


def _plain(value):
    """The first value that is not exactly a builtin type, inside containers too; None if all are."""
    todo, seen = [value], 0
    while todo and seen < _PLAIN_CHECKED:
        x = todo.pop()
        seen += 1
        if type(x) not in _PLAIN:
            return x
        if type(x) is dict:
            todo.extend(x.keys())
            todo.extend(x.values())
        elif type(x) in (list, tuple, set, frozenset):
            todo.extend(x)
    return None


def plain_returns(fn):
    """``fn``, made to fail on a return value that is not built of plain builtin values: an object
    whose ``__eq__`` always answers True (``unittest.mock.ANY`` is one) passes every equality assert."""

    def candidate(*args, **kwargs):
        result = fn(*args, **kwargs)
        odd = _plain(result)
        if odd is not None:
            raise TypeError(f"returned a {type(odd).__module__}.{type(odd).__qualname__}, not a plain value")
        return result

    return candidate


def _error(e):
    tb = e.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in ("test.py", "solution.py"):
            line = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    text = f"{type(e).__name__}: {e}"[:300]
    return f"{text} ({line})" if line else text


def main():
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(**event):
        # repr of str/int/bool/None, read back with ast.literal_eval (json would cost an import here)
        report.write(nonce + " " + repr(event) + "\n")
        report.flush()

    solution_path, test_path, partial = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    entry_point = sys.argv[4] if len(sys.argv) > 4 else ""
    with open(solution_path, encoding="utf-8") as f:
        solution = f.read()
    with open(test_path, encoding="utf-8") as f:
        test = f.read()
    global ast
    try:
        if partial:
            import ast

            test_code = ast.parse(test, "test.py")
            plan = plan_units(test_code)
        else:
            test_code, plan = compile(test, "test.py", "exec"), []
    except SyntaxError as e:
        emit(event="test_error", error=_error(e))
        return
    total = sum(kind == "test" for kind, _, _ in plan)
    if total == 0:  # not separable (or not asked to be): the whole test program is one unit
        plan = [("test", test_code, None)]
        total = 1
    emit(event="units", total=total)
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(compile(solution, "solution.py", "exec"), namespace)
    except BaseException as e:  # noqa: BLE001 - a SystemExit or a crash of the solution is its failure
        emit(event="load_error", error=_error(e))
        return
    if entry_point and callable(namespace.get(entry_point)):
        namespace[entry_point] = plain_returns(namespace[entry_point])
    passed, first_error, i = 0, None, 0
    for kind, stmt, bind in plan:
        try:
            if bind is not None:
                name, expr = bind
                namespace[name] = eval(compile(ast.Expression(expr), "test.py", "eval"), namespace)
                continue
            if not isinstance(stmt, type(main.__code__)):  # a tree: the whole program, or one statement
                module = stmt if isinstance(stmt, ast.Module) else ast.Module(body=[stmt], type_ignores=[])
                stmt = compile(module, "test.py", "exec")
            exec(stmt, namespace)
            ok, error = True, None
        except BaseException as e:  # noqa: BLE001 - an AssertionError or anything else fails the unit
            ok, error = False, _error(e)
        if kind != "test":
            if error is not None and first_error is None:
                first_error = f"setup: {error}"
            continue
        passed += ok
        if error is not None and first_error is None:
            first_error = error
        emit(event="unit", index=i, ok=ok)
        i += 1
    emit(event="done", passed=passed, total=total, error=first_error)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Don't wait for the solution's threads or atexit hooks: the verdict is in.
        sys.stderr.flush()
        os._exit(0)
