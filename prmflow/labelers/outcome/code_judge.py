"""Runs a code problem's tests and reaches the verdict; runs in a sandbox of its own (standard library only).

``python code_judge.py test.py prelude.py PARTIAL ENTRY_POINT REQUEST_FD REPLY_FD REPLY_CAP``. The
solution is not here: it runs in another sandbox, behind ``code_server.py``, and every name of the
solution the tests use is a ``Remote`` here: calling it sends the arguments to the solution as plain
data and decodes the plain value it returns (``prmflow_code_channel``), so nothing the solution does
can reach this process, its builtins, its test program or its report. The prelude (a benchmark's
prompt: imports, helper functions, the stub of the entry point) runs here as trusted code, so a
solution cannot redefine a helper the tests call (HumanEval/32's ``poly``); only the names the prelude
does not define, and the entry point, come from the solution. A name of a builtin never does.

The report goes to this process's original stdout, which the solution cannot write to, as JSON lines:
``{"event": "units", "total": n}``, one ``{"event": "unit", "index": i, "ok": bool}`` per test unit,
then ``{"event": "done", ...}``; or ``load_error`` (the solution did not load), ``test_error`` (the
test program does not compile). The tests' own prints go to stderr.

With PARTIAL=1 the tests are split into units when they are separable: each top-level statement
that holds an ``assert`` is a unit, and a top-level call ``check(candidate)`` of a test function of
one argument is opened up into that function's statements, the argument bound (HumanEval's form).
Other statements are setup and run in order. Each unit passes when it raises nothing.
"""

import builtins
import importlib
import json
import os
import sys

if __name__ == "__main__":  # in its sandbox, beside its copy of the channel module
    sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
    from prmflow_code_channel import ChannelError, Line, dumps, loads, to_plain, write_all
else:  # imported on the host, by the tests
    from prmflow.labelers.outcome.code_channel import ChannelError, Line, dumps, loads, to_plain, write_all

ast = None  # imported only when the tests are split into units (partial credit)


class SolutionGone(BaseException):
    """The solution's process ended (or broke the channel): every call from now on fails. A
    BaseException, so a test's ``except Exception`` cannot swallow it into a pass."""


class SolutionError(Exception):
    """An exception the solution raised that is not a builtin one (its name and message only)."""


class Channel:
    def __init__(self, req_fd, rep_fd, cap):
        self.req_fd, self.replies, self.seq, self.gone = req_fd, Line(rep_fd, cap), 0, None

    def receive(self):
        try:
            line = self.replies.read()
            if line is None:
                raise SolutionGone("the solution's process ended")
            return loads(line)
        except ChannelError as e:
            raise SolutionGone(f"the solution broke the channel: {e}") from None
        except MemoryError:
            raise SolutionGone("the solution broke the channel: a reply too large to decode") from None

    def call(self, name, args, kwargs):
        if self.gone is not None:
            raise SolutionGone(self.gone)
        try:
            payload = [to_plain(list(args), True), to_plain(dict(kwargs), True)]
        except ChannelError as e:
            raise TypeError(f"cannot pass to the solution's {name}: {e}") from None
        self.seq += 1
        try:
            write_all(self.req_fd, dumps(["call", self.seq, name, *payload]))
            reply = self.receive()
        except SolutionGone as e:
            self.gone = str(e)
            raise
        except OSError:
            self.gone = "the solution's process ended"
            raise SolutionGone(self.gone) from None
        if type(reply) is not list or len(reply) < 3 or reply[1] != self.seq:
            self.gone = "the solution answered out of turn"
            raise SolutionGone(self.gone)
        kind = reply[0]
        if kind == "return" and len(reply) == 4 and type(reply[3]) is list:
            for change in reply[3]:
                _apply_change(args, change)
            return reply[2]
        if kind == "raise" and len(reply) == 5 and type(reply[2]) is str and type(reply[3]) is str:
            raise _exception(reply[2], reply[3], reply[4] if type(reply[4]) is list else None)
        if kind == "unplain" and type(reply[2]) is str:
            raise TypeError(f"the solution's {name} returned {reply[2]}")
        self.gone = "the solution answered out of turn"
        raise SolutionGone(self.gone)


def _apply_change(args, change):
    """The solution changed a list, dict, set or bytearray argument in place: so does the judge's copy."""
    if type(change) is not list or len(change) != 2 or type(change[0]) is not int or not 0 <= change[0] < len(args):
        return
    arg, new = args[change[0]], change[1]
    if type(arg) is not type(new):
        return
    if isinstance(arg, (list, bytearray)):
        arg[:] = new
    elif isinstance(arg, (dict, set)):
        arg.clear()
        arg.update(new)


def _exception(name, message, args):
    """The solution's exception as one of the judge's: a builtin Exception type by name (with the
    arguments it was raised with when they are plain data and say the same), else SolutionError."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and "." not in name:
        try:
            if args is not None and str(kind(*args)) == message:
                return kind(*args)
        except Exception:  # noqa: BLE001 - a builtin whose constructor wants other arguments
            pass
        try:
            return kind(message)
        except Exception:  # noqa: BLE001
            pass
    return SolutionError(f"{name}: {message}")


class Remote:
    """A function of the solution, called across the channel."""

    def __init__(self, channel, name):
        self._channel, self.__name__, self.__qualname__ = channel, name, name

    def __call__(self, *args, **kwargs):
        return self._channel.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<the solution's {self.__name__}>"


def _is_test(stmt):
    """A statement that asserts when it runs (a definition holding asserts only defines)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    return _has_assert(stmt)


def _has_assert(node):
    return any(isinstance(sub, ast.Assert) for sub in ast.walk(node))


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


def _error(e):
    tb = e.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "test.py":
            line = f"test.py:{tb.tb_lineno}"
        tb = tb.tb_next
    text = f"{type(e).__name__}: {e}"[:300]
    return f"{text} ({line})" if line else text


def run_prelude(prelude, namespace):
    """Run the prelude as trusted code; a prompt that ends in an open ``def`` gets a body to close it."""
    for source in (prelude, prelude.rstrip() + "\n    pass\n"):
        try:
            code = compile(source, "prelude.py", "exec")
        except (SyntaxError, ValueError):
            continue
        try:
            exec(code, namespace)
        except Exception:  # noqa: BLE001 - what ran before the failure stays defined; the rest comes from the solution
            pass
        return


_NO_IMPORT = {"__main__", "antigravity", "this", "site", "idlelib", "tkinter", "turtle", "turtledemo"}


def _plain_stdlib(module):
    """A standard-library module the tests may get under the name the solution imported it as."""
    top = module.split(".")[0]
    return top in sys.stdlib_module_names and top not in _NO_IMPORT and not top.startswith("_")


def bind_solution(namespace, names, channel, entry_point):
    """The solution's names the tests may use: not builtins, not the prelude's (but the entry point)."""
    for item in names:
        if type(item) is not list or len(item) != 3 or type(item[0]) is not str or not item[0].isidentifier():
            continue
        name, kind, value = item
        if name.startswith("__") or hasattr(builtins, name):
            continue
        if name in namespace and name != entry_point:
            continue
        if kind == "callable":
            namespace[name] = Remote(channel, name)
        elif kind == "value":
            namespace[name] = value
        elif kind == "module" and type(value) is str and name == value.rsplit(".", 1)[-1] and _plain_stdlib(value):
            # only under its own name: a solution cannot hand the tests another module as ``math``
            try:
                namespace[name] = importlib.import_module(value)
            except Exception:  # noqa: BLE001 - a module the judge cannot import is left out
                pass


def main():
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(**event):
        report.write(json.dumps(event) + "\n")
        report.flush()

    test_path, prelude_path, partial, entry_point = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    channel = Channel(int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    with open(test_path, encoding="utf-8") as f:
        test = f.read()
    with open(prelude_path, encoding="utf-8") as f:
        prelude = f.read()
    global ast
    try:
        if partial:
            import ast

            test_code = ast.parse(test, "test.py")
            plan = plan_units(test_code)
        else:
            test_code, plan = compile(test, "test.py", "exec"), []
    except (SyntaxError, ValueError) as e:
        emit(event="test_error", error=_error(e))
        return
    total = sum(kind == "test" for kind, _, _ in plan)
    if total == 0:  # not separable (or not asked to be): the whole test program is one unit
        plan = [("test", test_code, None)]
        total = 1
    emit(event="units", total=total)
    try:
        hello = channel.receive()
    except SolutionGone as e:
        emit(event="done", passed=0, total=total, error=str(e), gone=str(e))
        return
    if type(hello) is list and len(hello) == 2 and hello[0] == "load_error":
        emit(event="load_error", error=str(hello[1])[:300])
        return
    if type(hello) is not list or len(hello) != 2 or hello[0] != "hello" or type(hello[1]) is not list:
        emit(event="done", passed=0, total=total, error="the solution answered out of turn", gone="out of turn")
        return
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    if prelude:
        run_prelude(prelude, namespace)
    bind_solution(namespace, hello[1], channel, entry_point)
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
        if channel.gone is not None:
            ok = False
        if kind != "test":
            if error is not None and first_error is None:
                first_error = f"setup: {error}"
            continue
        passed += ok
        if error is not None and first_error is None:
            first_error = error
        emit(event="unit", index=i, ok=ok)
        i += 1
    emit(event="done", passed=passed, total=total, error=first_error, gone=channel.gone)


if __name__ == "__main__":
    try:
        main()
    finally:
        sys.stderr.flush()
        os._exit(0)
