"""Training examples from ``prmflow export --format prmflow`` files: prompt, steps, targets, weights.

A path is a file (``.parquet``, ``.jsonl``, ``.json`` lines) or an export directory, whose ``train``
(or ``validation``) file is read. A row is refused with a one-line error naming the file and row when
its steps, targets or weights do not line up, or a target is outside [0, 1]: training on a misread
file must not start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prmflow.core.section import ConfigError
from prmflow.ids import content_id


@dataclass(frozen=True)
class Example:
    problem_id: str
    prompt: str
    steps: tuple[str, ...]
    targets: tuple[float | None, ...]
    """Per step in [0, 1]; None leaves the step out of the loss."""
    weights: tuple[float, ...]
    """Per step >= 0."""


def resolve(path: str, split: str) -> Path | None:
    """The file behind a path: itself, or an export directory's ``<split>.parquet|jsonl`` (None if absent)."""
    p = Path(path)
    if p.is_dir():
        for ext in ("parquet", "jsonl"):
            if (p / f"{split}.{ext}").is_file():
                return p / f"{split}.{ext}"
        return None
    if not p.is_file():
        raise ConfigError(f"data file {path!r} does not exist")
    return p


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise ConfigError(f"{path}:{line_no} is not a JSON line ({e})") from None
    return rows


def _floats(value, n: int, where: str, what: str) -> list[float | None]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ConfigError(f"{where}: {what} must be a list of {n} numbers (one per step), got {value!r:.80}")
    out = []
    for v in value:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ConfigError(f"{where}: {what} must hold finite numbers or null, got {v!r}")
        out.append(None if v is None else float(v))
    return out


def read_examples(path: Path, label_column: str, use_weights: bool) -> list[Example]:
    out = []
    for i, row in enumerate(_rows(path)):
        where = f"{path} row {i}"
        for key in ("prompt", "steps", label_column):
            if key not in row:
                raise ConfigError(f"{where} has no {key!r} column; columns: {sorted(row)}")
        steps = row["steps"]
        if not isinstance(steps, (list, tuple)) or not steps or not all(isinstance(s, str) for s in steps):
            raise ConfigError(f"{where}: steps must be a non-empty list of strings, got {steps!r:.80}")
        targets = _floats(row[label_column], len(steps), where, label_column)
        if any(t is not None and not 0.0 <= t <= 1.0 for t in targets):
            raise ConfigError(f"{where}: {label_column} must be in [0, 1], got {targets}")
        raw_w = row.get("weights") if use_weights else None
        weights = [1.0] * len(steps) if raw_w is None else [1.0 if w is None else w
                                                            for w in _floats(raw_w, len(steps), where, "weights")]
        if any(w < 0 for w in weights):
            raise ConfigError(f"{where}: weights must be >= 0, got {weights}")
        prompt = row["prompt"]
        problem_id = row.get("problem_id") or content_id("prompt", prompt)
        out.append(Example(str(problem_id), str(prompt), tuple(steps), tuple(targets), tuple(weights)))
    return out


def load(paths: Sequence[str], split: str, label_column: str, use_weights: bool) -> list[Example]:
    examples = []
    for path in paths:
        f = resolve(path, split)
        if f is not None:
            examples.extend(read_examples(f, label_column, use_weights))
    return examples


def held_out(problem_id: str, fraction: float, seed: int) -> bool:
    """Whether a problem goes to validation: a seeded hash, so a problem is never on both sides."""
    return int(content_id("prm-val", seed, problem_id), 16) / 16**16 < fraction
