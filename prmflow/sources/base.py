"""What every source adapter shares: raw records, the BadRecord error, typed field access, drafts.

An adapter's whole surface is one function ``parse(obj, raw, spec) -> Parsed``; it raises
``BadRecord(reason, detail)`` for anything malformed, and the caller turns that into a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prmflow.schemas import Problem


class BadRecord(ValueError):
    """A malformed input row. ``reason`` is a stable code (a counter name); ``detail`` is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RawRecord:
    """One row as read: where it came from, and its text (None when it failed to decode or parse)."""

    source_file: str
    location: int
    """1-based line for JSONL, 0-based element index for JSON arrays and Parquet rows."""
    text: str
    value: Any = None
    """The decoded JSON value or Parquet row; None until parsed."""
    error: BadRecord | None = None
    size: int = 0


@dataclass(frozen=True)
class Draft:
    """An imported solution before segmentation: either text or already-split steps, plus gold."""

    text: str | None = None
    steps: tuple[str, ...] | None = None
    origin: str = "imported"
    generator: str | None = None
    gold_outcome: float | None = None
    gold_first_error: int | None = None
    gold_step_labels: tuple[float | None, ...] | None = None
    step_scores: tuple[float | None, ...] | None = None
    metadata: dict | None = None


@dataclass(frozen=True)
class Parsed:
    problem: Problem
    drafts: tuple[Draft, ...] = field(default_factory=tuple)


_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "a boolean"}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def get_path(obj: Any, path: str) -> Any:
    """``obj["a"]["b"]`` for the dotted path "a.b"; raises KeyError naming the missing part."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(part)
        cur = cur[part]
    return cur


def field_value(obj: Any, path: str, kind: type, *, required: bool = True, allow_empty: bool = False) -> Any:
    """A typed field, or BadRecord(missing_field | wrong_type | empty_field) naming it."""
    try:
        value = get_path(obj, path)
    except KeyError:
        if required:
            raise BadRecord("missing_field", f"field {path!r} is missing") from None
        return None
    if value is None:
        if required:
            raise BadRecord("missing_field", f"field {path!r} is null")
        return None
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # numeric answers ("answer": 18) are common and unambiguous
        raise BadRecord("wrong_type", f"field {path!r} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
    if kind is str and not allow_empty and not value.strip():
        raise BadRecord("empty_field", f"field {path!r} is empty")
    return value


def string_list(obj: Any, path: str, *, required: bool = True) -> tuple[str, ...] | None:
    """A non-empty list of non-empty strings (steps)."""
    steps = field_value(obj, path, list, required=required)
    if steps is None:
        return None
    if not steps:
        raise BadRecord("empty_steps", f"field {path!r} has no steps")
    for i, s in enumerate(steps):
        if not isinstance(s, str):
            raise BadRecord("wrong_type", f"{path}[{i}] must be a string, got {_describe(s)}")
        if not s.strip():
            raise BadRecord("empty_steps", f"{path}[{i}] is an empty step")
    return tuple(steps)


def normalise_prompt(text: str) -> str:
    """The join key for references: whitespace-insensitive problem text."""
    return " ".join(text.split())
