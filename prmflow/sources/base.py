"""What every source adapter shares: raw records, the BadRecord error, typed field access, drafts.

An adapter's whole surface is one function ``parse(obj, raw, spec) -> Parsed``; it raises
``BadRecord(reason, detail)`` for anything malformed, and the caller turns that into a dead letter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from prmflow.schemas import Problem
from prmflow.schemas.base import fast_init


class BadRecord(ValueError):
    """A malformed input row. ``reason`` is a stable code (a counter name); ``detail`` is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self):
        # records carrying their error cross process and stage boundaries pickled; the default
        # exception pickling would call BadRecord(message) and fail
        return BadRecord, (self.reason, self.detail)


@fast_init
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
    """Bytes of the row's span in the (decompressed) file; for Parquet rows, of their JSON form."""
    offset: int | None = None
    """Byte offset of the span in the (decompressed) file; None where rows have no byte span
    (Parquet, generated inputs). Spans plus separators must add up to the file's bytes."""


@fast_init
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


@fast_init
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
    if "." not in path:  # most fields are top-level: one lookup
        if not isinstance(obj, dict) or path not in obj:
            raise KeyError(path)
        return obj[path]
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
            return finite_number(value, path)
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float):
                finite_number(value, f"field {path!r}")  # "nan" or "inf" as text would be misread
            return str(value)  # numeric answers ("answer": 18) are common and unambiguous
        raise BadRecord("wrong_type", f"field {path!r} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
    if kind is float:
        return finite_number(value, path)
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


def finite_number(value: int | float, where: str) -> float:
    """A JSON number as a finite float, or BadRecord(bad_value): ``NaN``/``Infinity`` (which Python's
    json module accepts) and integers beyond float range (which ``float()`` refuses with OverflowError)."""
    try:
        out = float(value)
    except OverflowError:
        raise BadRecord("bad_value", f"{where} = {_describe(value)} is beyond the float range") from None
    if not math.isfinite(out):
        raise BadRecord("bad_value", f"{where} must be a finite number, got {value!r}")
    return out


def number_list(obj: Any, path: str) -> tuple[float | None, ...] | None:
    """An optional list of finite numbers or nulls (gold step labels, PRM step scores)."""
    values = field_value(obj, path, list, required=False)
    if values is None:
        return None
    out: list[float | None] = []
    for i, x in enumerate(values):
        if x is None:
            out.append(None)
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise BadRecord("wrong_type", f"field {path!r} must be a list of numbers, got {_describe(x)} at [{i}]")
        else:
            out.append(finite_number(x, f"{path}[{i}]"))
    return tuple(out)


#: Deeper than any real row (PRM800K, the deepest input here, nests 6 levels); a cap far below
#: Python's recursion limit, so no later repr, pickle or json.dumps of the row can overflow the stack.
MAX_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> tuple[str, int]:
    """``text`` with lone UTF-16 surrogates (JSON's ``"\\ud800"`` escape decodes to one) replaced by
    U+FFFD, and how many: a lone surrogate cannot be encoded as UTF-8, so Arrow and every writer
    downstream would fail on it."""
    if not _SURROGATE.search(text):
        return text, 0
    return _SURROGATE.subn(REPLACEMENT, text)


def clean_value(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Any, int]:
    """A decoded row made safe to carry: strings (keys too) without lone surrogates, and no nesting
    deeper than ``max_depth`` (BadRecord ``too_deep``). Returns the value and the number of
    surrogates replaced. Iterative, so a hostile row cannot exhaust the stack here either."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    dirty = False
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                dirty = True
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise BadRecord("too_deep", f"the row nests deeper than {max_depth} levels")
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in children:
            if isinstance(k, str) and _SURROGATE.search(k):
                dirty = True
            if isinstance(v, (dict, list, str)):
                stack.append((v, depth + 1))
    if not dirty:
        return value, 0
    count = [0]
    return _rebuild(value, count), count[0]


def _rebuild(value: Any, count: list[int]) -> Any:
    # depth is bounded by clean_value's check before this runs, so recursion is safe here
    if isinstance(value, str):
        text, n = clean_text(value)
        count[0] += n
        return text
    if isinstance(value, dict):
        return {_rebuild(k, count): _rebuild(v, count) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebuild(v, count) for v in value]
    return value
