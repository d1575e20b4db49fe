"""``code``: run the solution against the problem's tests in a sandbox.

A problem's ``tests`` (the labeler's reference) is either a plain Python test program, run after the
solution in the same namespace, or a JSON object with the parts a function-completion benchmark needs:
``{"test": "<test program>", "prelude": "<code before the solution>", "entry_point": "<name>"}``.
HumanEval's is its prompt as the prelude (signature, docstring, imports), its ``check`` function
followed by ``check(<entry_point>)`` as the test. The program run is prelude + solution: a body-only
completion continues the prompt's function; a solution that defines ``entry_point`` itself replaces
the prompt's stub (the prelude still gives it its imports). When the solution holds Markdown code
fences, the code in them is what runs (the block defining ``entry_point``, else the last one).

Verdict: 1.0 when every test passes, 0.0 otherwise; with ``partial`` the fraction of test units that
pass (see ``code_judge``). A solution that runs past the time limit or dies (a signal, an early
exit, output past the cap) is wrong, as in HumanEval's evaluation (Chen et al. 2021, "Evaluating Large
Language Models Trained on Code"), with status ``timeout`` or ``crash``; when the sandbox itself
fails the verdict is None with status ``sandbox_error``.

The verdict cannot be reached from the solution: the solution runs in a sandbox of its own behind
``code_server.py``, the tests run in another behind ``code_judge.py``, and they meet only on two pipes
that carry plain data (``code_channel``): the judge sends a call's arguments, the solution sends back
the value its function returned, and the judge compares. The tests, the judge and its report are not
in the solution's sandbox; how each sandbox's program ended comes from its init, never from what the
program prints or exits with. See docs/sandbox.md.

Every execution runs under bubblewrap (``prmflow.sandbox``). ``sandbox: none`` runs the code as
plain child processes, with only the rlimits and the wall clock, and is refused unless the environment
variable ``PRMFLOW_ALLOW_UNSANDBOXED=1`` acknowledges the risk.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmflow.labelers.outcome.base import Outcome
from prmflow.sandbox import Limits, Result, Sandbox, run_many
from prmflow.sandbox.pool import default_workers
from prmflow.sandbox.run import Program

ALLOW_UNSANDBOXED_ENV = "PRMFLOW_ALLOW_UNSANDBOXED"
# An execution waits (namespace setup and teardown, process start) more than it computes, so more
# executions than cores pay off: bench/grading_code.py on 2 cores gave 7.2 executions/s with 1
# worker, 12.5 with 2, 17.7 with 4, 22.7 with 8 (one sandbox per execution; with the judge's sandbox
# beside the solution's, 48 canonical HumanEval solutions on 8 workers ran at 12-14 executions/s
# against 30-36 before, on the same shared 2-core machine).
WORKERS_PER_CORE = 4
_HERE = Path(__file__).parent
CHANNEL = (_HERE / "code_channel.py").read_text(encoding="utf-8")
JUDGE = (_HERE / "code_judge.py").read_text(encoding="utf-8")
SERVER = (_HERE / "code_server.py").read_text(encoding="utf-8")
# Descriptor numbers of the two pipes, the same in the host and both sandboxes (the caller picks them).
_CHANNEL_MODULE = "prmflow_code_channel.py"


@dataclass(frozen=True)
class CodeConfig:
    timeout_s: float = 10.0
    """Wall-clock limit per execution (solution and all its tests)."""
    memory_mb: int = 1024
    """Address-space limit per process, MiB."""
    max_processes: int = 4
    """Processes and threads the program may hold at once. With ``memory_mb`` it bounds the memory of
    one sandbox: max_processes x memory_mb, plus its tmpfs (docs/sandbox.md); 4 x 1 GiB by default."""
    max_output_bytes: int = 1 << 20
    """Cap on each of stdout and stderr; past it the execution is killed (a crash)."""
    file_size_mb: int = 16
    """The largest file the program may write, MiB (its /tmp is a private tmpfs)."""
    partial: bool = False
    """Credit the fraction of test units that pass instead of all-or-nothing."""
    plain_returns: bool = True
    """Only values of exact builtin types (int, str, list, dict, ...) cross from the solution to the
    tests, always: an object whose ``__eq__`` always answers True cannot. On: an instance of a
    builtin's subclass (an IntEnum, a namedtuple, a Counter) fails as not plain. Off: it crosses as its
    builtin value (converted by the builtin's own methods, so it cannot cheat either)."""
    sandbox: Literal["bwrap", "none"] = "bwrap"
    """bwrap (mandatory default) or none (refused unless PRMFLOW_ALLOW_UNSANDBOXED=1)."""
    workers: int | None = None
    """Concurrent executions in ``label_many``; None: WORKERS_PER_CORE per available core."""

    def __post_init__(self) -> None:
        self._verify_args()

    def _verify_args(self) -> None:
        def number(name: str, value: object, integer: bool) -> None:
            kinds = (int,) if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < math.inf:
                rule = "a positive integer" if integer else "a positive number"
                raise ValueError(f"outcome.options.{name} must be {rule}, got {value!r}")

        number("timeout_s", self.timeout_s, False)
        number("memory_mb", self.memory_mb, True)
        number("max_processes", self.max_processes, True)
        number("max_output_bytes", self.max_output_bytes, True)
        number("file_size_mb", self.file_size_mb, True)
        if self.workers is not None:
            number("workers", self.workers, True)
        for name in ("partial", "plain_returns"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"outcome.options.{name} must be a boolean, got {getattr(self, name)!r}")
        if self.sandbox not in ("bwrap", "none"):
            raise ValueError(f"outcome.options.sandbox must be 'bwrap' or 'none', got {self.sandbox!r}")
        if self.sandbox == "none" and os.environ.get(ALLOW_UNSANDBOXED_ENV) != "1":
            raise ValueError(
                f"outcome.options.sandbox must be 'bwrap' unless {ALLOW_UNSANDBOXED_ENV}=1 is set "
                f"(running generated code unsandboxed can touch this machine), got {self.sandbox!r}"
            )
        try:
            self.limits()
        except ValueError as e:  # Limits' own floor (memory_mb >= 64), under this section's name
            raise ValueError(str(e).replace("sandbox.", "outcome.options.", 1)) from None

    def limits(self) -> Limits:
        return Limits(
            timeout_s=float(self.timeout_s), memory_mb=self.memory_mb, max_processes=self.max_processes,
            max_output_bytes=self.max_output_bytes, file_size_mb=self.file_size_mb,
        )


@dataclass(frozen=True)
class CodeTests:
    test: str
    prelude: str = ""
    entry_point: str | None = None


def parse_tests(reference: str) -> CodeTests:
    """The tests from a Problem's ``tests`` value; raises ValueError when it is malformed."""
    text = reference.lstrip()
    if not text.startswith("{"):
        return CodeTests(test=reference)
    try:
        obj = json.loads(reference)
    except json.JSONDecodeError as e:
        raise ValueError(f"tests look like JSON but are not: {e.msg} at column {e.colno}") from None
    unknown = sorted(set(obj) - {"test", "prelude", "entry_point"})
    if unknown:
        raise ValueError(f"tests has unknown keys {unknown}; allowed: entry_point, prelude, test")
    test, prelude, entry = obj.get("test"), obj.get("prelude", ""), obj.get("entry_point")
    if not isinstance(test, str) or not test.strip():
        raise ValueError("tests.test must be a non-empty string")
    if not isinstance(prelude, str):
        raise ValueError("tests.prelude must be a string")
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise ValueError(f"tests.entry_point must be a Python identifier, got {entry!r}")
    return CodeTests(test=test, prelude=prelude, entry_point=entry)


def humaneval_tests(prompt: str, test: str, entry_point: str) -> str:
    """HumanEval's row as a ``tests`` value: the prompt is the prelude, ``check`` is called on the entry point."""
    return json.dumps(
        {"prelude": prompt, "test": f"{test.rstrip()}\n\ncheck({entry_point})\n", "entry_point": entry_point},
        sort_keys=True,
    )


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def _defines(code: str, name: str) -> bool:
    return re.search(rf"(?m)^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code) is not None


def solution_code(solution: str, entry_point: str | None) -> str:
    """The code in a solution: its fenced blocks' when it has any, else the text itself."""
    blocks = [body for lang, body in _FENCE.findall(solution) if lang.lower() in ("", "python", "py", "python3")]
    if not blocks:
        return solution
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    return blocks[-1]


def build_program(solution: str, tests: CodeTests) -> str:
    code = solution_code(solution, tests.entry_point)
    if not tests.prelude:
        return code
    if tests.entry_point and _defines(code, tests.entry_point):
        return f"{tests.prelude.rstrip()}\n\n{code}"  # redefines the prompt's stub
    prelude = tests.prelude if tests.prelude.endswith("\n") else tests.prelude + "\n"
    return prelude + code


def _events(judge: Result) -> list[dict]:
    events = []
    for line in judge.stdout.decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def verdict(judge: Result, solution: Result, partial: bool, name: str = "code") -> Outcome:
    """The Outcome of one execution, from the judge's report and how each sandbox ended."""
    if judge.status == "sandbox_error" or solution.status == "sandbox_error":
        why = judge.detail if judge.status == "sandbox_error" else solution.detail
        return Outcome(None, name, "sandbox_error", None, why)
    events = _events(judge)
    by_kind = {e.get("event"): e for e in events}
    if "test_error" in by_kind:
        return Outcome(None, name, "parse_error", None, f"the test program does not compile: {by_kind['test_error'].get('error')}")
    how = _how_it_ended(solution)
    if "load_error" in by_kind:
        return Outcome(0.0, name, "ok", None, f"the solution failed to load: {by_kind['load_error'].get('error')}")
    done = by_kind.get("done")
    total = _int(by_kind.get("units", {}).get("total"))
    if done is not None and not done.get("gone"):
        passed, total = _int(done.get("passed")), _int(done.get("total"))
        value = passed / total if partial and total else float(passed == total and total > 0)
        detail = None if passed == total else f"{passed}/{total} tests passed; first failure: {done.get('error')}"
        return Outcome(value, name, "ok", None, detail)
    passed = sum(1 for e in events if e.get("event") == "unit" and e.get("ok") is True)
    value = passed / total if partial and total else 0.0
    if judge.status == "timeout" or solution.status == "timeout":
        status, how = "timeout", judge.detail if judge.status == "timeout" else solution.detail
    else:
        status = "crash"
        if done is not None and isinstance(done.get("gone"), str):
            # the judge saw the solution's process end or break the channel; say how it ended if it did
            how = done["gone"] + ("" if solution.status == "stopped" else f" ({how})")
        elif done is None and solution.status in ("ok", "stopped"):
            how = f"the tests' process ended early ({judge.detail})"
    tail = solution.stderr.decode("utf-8", errors="replace").strip()[-300:]
    detail = f"{how}; {passed}/{total} tests passed before" + (f"; stderr: {tail}" if tail else "")
    return Outcome(value, name, status, None, detail)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _how_it_ended(solution: Result) -> str:
    if solution.status in ("ok", "error"):
        return f"the solution exited before the tests finished ({solution.detail or 'exit code 0'})"
    return solution.detail or solution.status


class CodeLabeler:
    """Runs each solution with its tests in a fresh sandbox; ``label_many`` runs many at once."""

    name = "code"

    def __init__(self, config: CodeConfig | None = None) -> None:
        self.config = config or CodeConfig()
        # Fails closed here, naming what is missing, when bubblewrap cannot start a sandbox.
        self.sandbox = Sandbox(self.config.limits(), mode=self.config.sandbox)

    def label(self, solution: str, reference: str | None) -> Outcome:
        if reference is None or not str(reference).strip():
            return Outcome(None, self.name, "no_reference", None, "the problem has no tests")
        try:
            tests = parse_tests(reference)
        except ValueError as e:
            return Outcome(None, self.name, "parse_error", None, str(e))
        if not solution or not solution.strip():
            return Outcome(0.0, self.name, "no_answer", None, "empty solution")
        try:
            judge, solution = self._execute(build_program(solution, tests), tests)
        except Exception as e:  # noqa: BLE001 - label never raises; an unexpected failure is a value
            return Outcome(None, self.name, "sandbox_error", None, f"{type(e).__name__}: {e}")
        return verdict(judge, solution, self.config.partial, self.name)

    def _execute(self, program: str, tests: CodeTests) -> tuple[Result, Result]:
        """The judge (tests) and the solution, each in its own sandbox, joined by two pipes."""
        config, box = self.config, self.sandbox
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        reply_cap = max(1 << 20, (config.memory_mb << 20) // 16)
        judge = Program(
            {_CHANNEL_MODULE: CHANNEL, "judge.py": JUDGE, "test.py": tests.test, "prelude.py": tests.prelude},
            ["judge.py", box.prog_path("test.py"), box.prog_path("prelude.py"), "1" if config.partial else "0",
             tests.entry_point or "", str(req_w), str(rep_r), str(reply_cap)],
            fds=(req_w, rep_r),
        )
        server = Program(
            {_CHANNEL_MODULE: CHANNEL, "server.py": SERVER, "solution.py": program},
            ["server.py", box.prog_path("solution.py"), str(req_r), str(rep_w), "0" if config.plain_returns else "1"],
            fds=(req_r, rep_w),
        )
        # staged: the solution starts once the judge runs, so it cannot delay or disturb the judge's start
        judge_result, solution_result = box.run_group([judge, server], primary=0, staged=True)
        return judge_result, solution_result

    def label_many(self, pairs: list[tuple[str, str | None]]) -> list[Outcome]:
        """``[label(s, r) for s, r in pairs]``, up to ``workers`` executions at once, in order."""
        return run_many(lambda p: self.label(*p), pairs, self.config.workers or WORKERS_PER_CORE * default_workers())

    def close(self) -> None:
        pass
