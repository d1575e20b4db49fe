"""``math``: equivalence of the stated answer with the reference, on Math-Verify.

Gold is parsed first (a reference that can't be parsed is a ``parse_error``, not a wrong solution).
The solution's answer is taken from its last ``\\boxed{}``, ``#### N`` or "The answer is N"; when it has
none of those, Math-Verify's own unanchored extraction (last expression) gets the whole text.
Math-Verify's timeouts are disabled (they rely on signal.alarm); ``TimeLimitedRunner`` enforces
``timeout_s`` from any thread instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from prmflow.labelers.outcome.base import (
    Outcome,
    clean_number_text,
    extract_answer,
    last_math_result,
    unescape_currency,
)
from prmflow.labelers.outcome.timelimit import TimeLimitedRunner, Timeout


@dataclass(frozen=True)
class MathConfig:
    timeout_s: float | None = 5.0
    """Wall-clock limit per verdict, enforced in a child process; None runs in-process without a limit
    (fast, for trusted input and tests)."""
    float_rounding: int = 6
    """Decimal places Math-Verify rounds floats to before comparing."""

    def __post_init__(self) -> None:
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"outcome.timeout_s must be > 0 or null, got {self.timeout_s}")
        if self.float_rounding < 0:
            raise ValueError(f"outcome.float_rounding must be >= 0, got {self.float_rounding}")


def _as_latex(answer: str) -> str:
    answer = answer.strip()
    if answer.startswith("$") or answer.startswith("\\("):
        return answer
    return f"${answer}$"


def _gold_text(reference: str) -> str:
    extracted, how = extract_answer(reference)
    ref = extracted if how == "hashes" else reference
    return _as_latex(clean_number_text(ref))


def math_verdict(solution: str, reference: str, float_rounding: int = 6) -> tuple[float | None, str, str | None, str | None]:
    """(value, status, final_answer, detail). Module-level so a child process can run it."""
    import logging

    from math_verify import parse, verify

    # It warns on every call that we disabled its signal-based timeouts; we enforce our own.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold = parse(_gold_text(reference), parsing_timeout=None)
    if not gold:
        return None, "parse_error", None, f"reference {reference!r} could not be parsed"
    answer, how = extract_answer(solution)
    if answer is not None:
        pred_text = f"\\boxed{{{unescape_currency(answer)}}}" if how == "boxed" else _as_latex(clean_number_text(answer))
        pred = parse(pred_text, parsing_timeout=None)
    else:
        pred = []
        formula = last_math_result(solution)
        if formula is not None:
            answer = formula
            pred = parse(_as_latex(clean_number_text(formula)), parsing_timeout=None)
        if not pred:
            answer = None
            pred = parse(solution.replace("\\$", ""), parsing_timeout=None)
    if not pred:
        return 0.0, "no_answer", answer, "no final answer could be extracted"
    final = answer if answer is not None else str(pred[-1])
    ok = verify(gold, pred, float_rounding=float_rounding, timeout_seconds=None)
    return (1.0 if ok else 0.0), "ok", final, None


class MathLabeler:
    name = "math"

    def __init__(self, config: MathConfig | None = None) -> None:
        self.config = config or MathConfig()
        self._runner = TimeLimitedRunner(self.config.timeout_s) if self.config.timeout_s else None

    def label(self, solution: str, reference: str | None) -> Outcome:
        if reference is None or not str(reference).strip():
            return Outcome(None, self.name, "no_reference", None, "the problem has no reference answer")
        args = (solution, str(reference), self.config.float_rounding)
        try:
            if self._runner is None:
                value, status, final, detail = math_verdict(*args)
            else:
                value, status, final, detail = self._runner.call(math_verdict, *args)
        except Timeout as e:
            return Outcome(None, self.name, "timeout", extract_answer(solution)[0], str(e))
        except Exception as e:  # noqa: BLE001 - a verdict that fails is a value, not a crash
            return Outcome(None, self.name, "error", None, f"{type(e).__name__}: {e}"[:500])
        return Outcome(value, self.name, status, final, detail)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
