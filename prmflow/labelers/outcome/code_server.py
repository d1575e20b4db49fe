"""Serves a solution's functions to the judge; runs in the solution's own sandbox (standard library only).

``python code_server.py solution.py REQUEST_FD REPLY_FD BY_VALUE``. It runs the solution as module
``solution``, answers ``["hello", names]`` (or ``["load_error", why]``), then answers each
``["call", seq, name, args, kwargs]`` with ``["return", seq, value, changed_args]``, ``["raise", seq,
type, message, args]`` or ``["unplain", seq, why]``, everything as plain data (``prmflow_code_channel``).
The solution can do anything to this process, this file included: all it can send is plain data,
which is no more than what its functions could return, and the verdict is reached elsewhere.
"""

import os
import sys

# Bound here before the solution runs: it may patch builtins.
from builtins import BaseException, callable, enumerate, isinstance, list, str, type  # noqa: A004, UP029

sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
from prmflow_code_channel import ChannelError, Line, dumps, loads, to_plain, write_all  # noqa: E402

_MUTABLE = (list, dict, set, bytearray)
_MAX_VALUE_BYTES = 1 << 16


def _describe(name, value):
    """How the judge may see a name of the solution: a function it can call, a plain value, a module."""
    if type(value).__name__ == "module":
        return [name, "module", value.__name__]
    if callable(value):
        return [name, "callable", None]
    try:
        plain = to_plain(value)
    except ChannelError:
        return None
    # a large table stays with the solution (the tests rarely name one; the hello must stay small)
    return [name, "value", plain] if len(dumps(plain)) <= _MAX_VALUE_BYTES else None


def main():
    solution_path, req_fd, rep_fd, by_value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    os.dup2(2, 1)  # the solution's prints go to stderr; the channel is its own pair of pipes
    requests = Line(req_fd, 1 << 30)
    with open(solution_path, encoding="utf-8") as f:
        source = f.read()
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(compile(source, "solution.py", "exec"), namespace)
    except BaseException as e:  # noqa: BLE001 - a SystemExit or a crash of the solution is its failure
        write_all(rep_fd, dumps(["load_error", f"{type(e).__name__}: {e}"[:300]]))
        return
    names = []
    for name, value in list(namespace.items()):
        if isinstance(name, str) and name.isidentifier() and not name.startswith("__"):
            described = _describe(name, value)
            if described is not None:
                names.append(described)
    write_all(rep_fd, dumps(["hello", names]))
    while True:
        line = requests.read()
        if line is None:
            return
        _, seq, name, args, kwargs = loads(line)
        before = [(i, to_plain(a)) for i, a in enumerate(args) if type(a) in _MUTABLE]
        try:
            value = namespace[name](*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - the judge decides what the exception means
            kind = type(e)
            where = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            try:
                message = str(e)[:300]
            except BaseException:  # noqa: BLE001 - an exception whose __str__ fails
                message = ""
            try:
                arguments = to_plain(list(e.args)) if len(repr(e.args)) < 1000 else None
            except BaseException:  # noqa: BLE001 - arguments that are not plain: the message stands for them
                arguments = None
            reply = ["raise", seq, where, message, arguments]
        else:
            try:
                changed = [[i, after] for i, was in before if (after := to_plain(args[i])) != was]
                reply = ["return", seq, to_plain(value, by_value), changed]
            except ChannelError as e:
                reply = ["unplain", seq, str(e)]
        write_all(rep_fd, dumps(reply))


if __name__ == "__main__":
    main()
