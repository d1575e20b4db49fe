"""``math``: equivalence of the stated answer with the reference, on Math-Verify.

The answer is what the solution states (``base.find_answer``: ``\\boxed{}``, ``#### N``, "A: N",
"the answer is N", else its last formula or quantity). The reference is its ``#### N`` when it has
one (a GSM8K rationale), else the whole text. When both are plain numbers (``numbers.py``) they are
compared in-process, without sympy, with Math-Verify's own rules; anything else goes to Math-Verify
in a worker of the per-process pool (``timelimit.py``) that enforces ``timeout_s`` from any thread.
A reference that can't be parsed is a ``parse_error``, never a wrong solution.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prmflow.labelers.outcome.base import Outcome, extract_answer, find_answer, unescape_currency
from prmflow.labelers.outcome.numbers import numbers_equal, parse_plain_number
from prmflow.labelers.outcome.timelimit import TimeLimitedRunner, Timeout

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MathConfig:
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    """Wall-clock limit per verdict in seconds, enforced by a pool of worker processes. null means
    the default (5 s): input from a model is untrusted and never runs without a limit. (Grading
    in-process without a limit exists only from Python: ``MathLabeler(config, in_process=True)``.)"""
    float_rounding: int = 6
    """Decimal places floats are rounded to before comparing (Math-Verify's ``float_rounding``)."""

    def __post_init__(self) -> None:
        if self.timeout_s is None:
            object.__setattr__(self, "timeout_s", DEFAULT_TIMEOUT_S)
        self._verify_args()

    def _verify_args(self) -> None:
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"outcome.options.timeout_s must be a number of seconds > 0 (or null for 5), got {t!r}")
        r = self.float_rounding
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= 15:
            raise ValueError(f"outcome.options.float_rounding must be an integer in [0, 15], got {r!r}")


def reference_answer(reference: str) -> str:
    """What a reference states: the ``#### N`` of a GSM8K rationale, else the whole text."""
    extracted, how = extract_answer(reference)
    return extracted if how == "hashes" and extracted else reference.strip()


def _balanced(s: str) -> bool:
    """Braces nest, and brackets open as often as they close ("[0, 1)" is an interval, "(1, 2" a typo)."""
    depth = 0
    for c in s.replace("\\{", "").replace("\\}", ""):
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
    return depth == 0 and s.count("(") + s.count("[") == s.count(")") + s.count("]")


def _tidy_answer(answer: str) -> str:
    r"""``\15`` is ``\$15`` with its "$" lost (ProcessBench gsm8k-329); ``\$`` and ``\%`` are signs."""
    return unescape_currency(answer).strip()


# --- the Math-Verify side, run in a worker process ------------------------------------------------

_PARSED: OrderedDict[str, list] = OrderedDict()
_PARSED_SIZE = 4096
_PARSED_LOCK = threading.Lock()  # in-process labelers may share it between threads


def _has_expression(parsed: list) -> bool:
    return any(not isinstance(x, str) for x in parsed)


_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")  # an escaped "\$" is a dollar sign
_WORD = re.compile(r"[A-Za-z]{2,}")
_LATEX = re.compile(r"[\\^_{}]")


def _parse(text: str) -> list:
    """Math-Verify's parse of an answer or a reference, read as LaTeX.

    Undelimited text goes in ``$...$`` first: bare, Math-Verify reads "5r^5" as 5 and "\\frac43"
    as nothing. Except Python's power, "2**10", which LaTeX reads as 2 (it is 1024 bare), and words
    without LaTeX, "5 cm", which LaTeX reads as 5*c*m (it is 5 bare).
    """
    from math_verify import parse

    if _DELIMITED.search(text):
        return parse(text, parsing_timeout=None)
    bare_first = "**" in text or (_WORD.search(text) is not None and _LATEX.search(text) is None)
    attempts = (text, f"${text}$") if bare_first else (f"${text}$", text)
    parsed: list = []
    for attempt in attempts:
        parsed = parse(attempt, parsing_timeout=None)
        if _has_expression(parsed):
            break
    return parsed


def _parse_cached(text: str) -> list:
    """``_parse``, remembered: a run grades many solutions per problem, and their answers repeat."""
    with _PARSED_LOCK:
        parsed = _PARSED.get(text)
        if parsed is not None:
            _PARSED.move_to_end(text)
            return parsed
    parsed = _parse(text)
    with _PARSED_LOCK:
        _PARSED[text] = parsed
        if len(_PARSED) > _PARSED_SIZE:
            _PARSED.popitem(last=False)
    return parsed


def math_verdict(
    answer: str | None, how: str, reference: str, float_rounding: int = 6
) -> tuple[float | None, str, str | None]:
    """(value, status, detail) from Math-Verify. Module-level so a worker process can run it."""
    import logging

    from math_verify import verify

    # It warns on every call that we disabled its signal-based timeouts; the pool enforces ours.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold = _parse_cached(reference) if _balanced(reference) else []
    if not _has_expression(gold):
        return None, "parse_error", f"reference {reference[:200]!r} could not be parsed as math"
    if answer is None:
        return 0.0, "no_answer", "the solution states no answer"
    pred = _parse_cached(f"\\boxed{{{answer}}}" if how == "boxed" else answer)
    if not pred:
        return 0.0, "no_answer", f"the stated answer {answer[:200]!r} is not math"
    ok = verify(gold, pred, float_rounding=float_rounding, timeout_seconds=None)
    return (1.0 if ok else 0.0), "ok", None


def warm_up() -> None:
    """Run in each new worker before its first timed call: imports, and Math-Verify's LaTeX parser
    (ANTLR) builds its tables on first use; neither should count against a verdict's limit."""
    for answer, reference in (("$\\frac{1}{2}$", "$0.5$"), ("$(1, \\sqrt{2}]$", "$\\{1, 2\\}$"), ("$x^2+1$", "$y=2x$")):
        math_verdict(answer, "answer-is", reference)


@dataclass(frozen=True)
class _Pending:
    """What Math-Verify is asked to judge: the answer as it will be parsed, how it was found, the
    reference; and the answer as the outcome shows it."""

    answer: str | None
    how: str
    reference: str
    shown: str | None


class MathLabeler:
    """Grades a solution against a reference; never raises (a failure is an Outcome status)."""

    name = "math"

    def __init__(self, config: MathConfig | None = None, *, in_process: bool = False) -> None:
        """``in_process=True`` runs Math-Verify in this thread without a time limit: for trusted
        input and tests only, which is why no config file can ask for it."""
        self.config = config or MathConfig()
        self._runner = None if in_process else TimeLimitedRunner(self.config.timeout_s, warmup=warm_up)

    def label(self, solution: str, reference: str | None) -> Outcome:
        prepared = self._prepare(solution, reference)
        return prepared if isinstance(prepared, Outcome) else self._judge(prepared)

    def label_many(self, pairs: Sequence[tuple[str, str | None]]) -> list[Outcome]:
        """``[label(s, r) for s, r in pairs]``, faster: plain numbers are judged here, and the pairs
        that need Math-Verify go to the pool's workers in parallel, each distinct one once (the
        rollouts of one prefix often state the same answer)."""
        prepared = [self._prepare(solution, reference) for solution, reference in pairs]
        todo = list(dict.fromkeys(p for p in prepared if not isinstance(p, Outcome)))
        if self._runner is None or len(todo) < 2:
            judged = {p: self._judge(p) for p in todo}
        else:
            with ThreadPoolExecutor(max_workers=min(len(todo), self._runner.max_workers)) as pool:
                judged = dict(zip(todo, pool.map(self._judge, todo), strict=True))
        return [p if isinstance(p, Outcome) else judged[p] for p in prepared]

    def _prepare(self, solution: str, reference: str | None) -> Outcome | _Pending:
        """The verdict when it needs no Math-Verify (no reference, plain numbers, a bad reference),
        else what Math-Verify must judge."""
        if reference is None or not str(reference).strip():
            return Outcome(None, self.name, "no_reference", None, "the problem has no reference answer")
        if not isinstance(solution, str):
            return Outcome(None, self.name, "error", None, f"the solution is not text: {type(solution).__name__}")
        try:
            ref = reference_answer(str(reference))
            found = find_answer(solution)
        except Exception as e:  # noqa: BLE001 - a verdict that fails is a value, not a crash
            return Outcome(None, self.name, "error", None, f"{type(e).__name__}: {e}"[:500])
        answer = _tidy_answer(found.answer) if found.answer is not None else None
        gold_number = parse_plain_number(ref)
        if gold_number is not None:
            if answer is None:
                return Outcome(0.0, self.name, "no_answer", None, "the solution states no answer")
            pred_number = parse_plain_number(answer)
            if pred_number is not None:
                same = numbers_equal(gold_number, pred_number, self.config.float_rounding)
                if same is not None:
                    return Outcome(1.0 if same else 0.0, self.name, "ok", found.answer)
        if not _balanced(ref):
            return Outcome(None, self.name, "parse_error", found.answer, f"reference {ref[:200]!r} has unbalanced brackets")
        # Against an equation ("y = 2x + 3"), a formula goes to Math-Verify whole, so that it is
        # compared as an equation; against a value, its result does.
        whole = found.formula is not None and "=" in ref
        pred = f"${found.formula}$" if whole else f"${answer}$" if found.how == "formula" else answer
        return _Pending(pred, found.how, ref, found.answer)

    def _judge(self, pending: _Pending) -> Outcome:
        args = (pending.answer, pending.how, pending.reference, self.config.float_rounding)
        try:
            value, status, detail = self._verdict(*args)
        except Timeout as e:
            return Outcome(None, self.name, "timeout", pending.shown, str(e))
        except Exception as e:  # noqa: BLE001
            return Outcome(None, self.name, "error", pending.shown, f"{type(e).__name__}: {e}"[:500])
        return Outcome(value, self.name, status, pending.shown, detail)  # type: ignore[arg-type]

    def _verdict(self, *args: Any) -> tuple[float | None, str, str | None]:
        if self._runner is None:
            return math_verdict(*args)
        return self._runner.call(math_verdict, *args)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
