"""The fast step-row builders equal the dataclass path: the dict rows column for column and in column
order, the columnar builders array for array."""

from __future__ import annotations

import dataclasses
import random

import pyarrow as pa
import pytest

from prmflow.core.trajectories import step_label_columns, step_label_rows, step_labels
from prmflow.schemas import (
    PROBLEM_SCHEMA,
    STEP_LABEL_SCHEMA,
    TRAJECTORY_SCHEMA,
    Problem,
    StepLabel,
    Trajectory,
    to_columns,
    to_row,
)


def trajectory(rng: random.Random, n: int) -> Trajectory:
    def maybe(values):
        return tuple(values) if rng.random() < 0.7 else None

    steps = tuple(f"step {i}: {rng.randint(0, 99)}" for i in range(n))
    return Trajectory(
        trajectory_id=f"{rng.getrandbits(64):016x}", problem_id="p", source=rng.choice(["a", "b"]),
        domain="arith", origin="imported", text="\n".join(steps), steps=steps,
        step_spans=tuple((i, i + 1) for i in range(n)),
        step_segments=tuple(rng.choice(["thinking", "response"]) for _ in range(n)),
        outcome=rng.choice([None, 0.0, 1.0]), gold_outcome=rng.choice([None, 0.0, 1.0]),
        gold_first_error=rng.choice([None, -1, 0]),
        gold_step_labels=maybe(rng.choice([None, 0.0, 1.0]) for _ in range(n)),
        step_scores=maybe(rng.random() for _ in range(n)),
        judge_step_scores=maybe(rng.random() for _ in range(n)),
        consensus=rng.choice([None, True, False]),
    )


def test_step_label_rows_equal_to_row_of_step_labels() -> None:
    rng = random.Random(0)
    for n in [1, 2, 3, 7, 20] * 20:
        t = trajectory(rng, n)
        provenance = rng.choice([None, {"config": "c", "labeler": {"name": "exact"}}])
        expected = [to_row(label) for label in step_labels(t, provenance)]
        rows = step_label_rows(t, provenance)
        assert rows == expected
        assert [list(r) for r in rows] == [list(r) for r in expected]  # column order too
        assert len({id(r) for r in rows}) == n  # each row its own dict: callers add keys to one


def test_every_step_label_field_is_either_per_trajectory_or_per_step() -> None:
    """A field added to StepLabel that varies by step must be set per step by step_label_rows: the
    rows of a trajectory whose steps differ in everything must still equal the dataclass path."""
    names = {f.name for f in dataclasses.fields(StepLabel)}
    t = trajectory(random.Random(1), 4)
    t = dataclasses.replace(t, gold_step_labels=(1.0, 0.0, None, 1.0), step_scores=(0.1, 0.2, 0.3, 0.4),
                            judge_step_scores=(0.9, 0.8, 0.7, 0.6))
    rows = step_label_rows(t, {"config": "c"})
    assert rows == [to_row(label) for label in step_labels(t, {"config": "c"})]
    assert set(rows[0]) == names


# -- the columnar builders: the same Arrow columns as the dict rows and their conversion ----------

def _full(cls, n: int, rng: random.Random):
    """A record of ``cls`` with every field set (by its Arrow type), lists of ``n`` items."""
    values = {}
    for f in dataclasses.fields(cls):
        kind = f.metadata["arrow_type"]
        if f.metadata.get("json"):
            value = {"k": [1, "é", None], "n": rng.random()}
        elif pa.types.is_list(kind) and pa.types.is_list(kind.value_type):
            value = tuple((i, i + 1) for i in range(n))
        elif pa.types.is_list(kind):
            value = tuple(f"{f.name} {i}" if pa.types.is_string(kind.value_type) else rng.random() for i in range(n))
        elif pa.types.is_string(kind):
            value = f"{f.name} {rng.randint(0, 9)} ✓"
        elif pa.types.is_boolean(kind):
            value = rng.random() < 0.5
        elif pa.types.is_integer(kind):
            value = rng.randint(-1, n - 1)
        else:
            value = rng.random()
        values[f.name] = value
    return cls(**values)


def _table(records_rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(records_rows, schema=schema)


def test_to_columns_equal_from_pylist_of_to_row() -> None:
    rng = random.Random(2)
    for cls, schema in ((Problem, PROBLEM_SCHEMA), (Trajectory, TRAJECTORY_SCHEMA)):
        records = [_full(cls, rng.randint(1, 5), rng) for _ in range(20)]
        records += [trajectory(rng, 3)] * (cls is Trajectory)  # and one with the defaults left None
        got = pa.Table.from_arrays(to_columns(records, cls), schema=schema)
        assert got.equals(_table([to_row(r) for r in records], schema), check_metadata=True)
        empty = pa.Table.from_arrays(to_columns([], cls), schema=schema)
        assert empty.equals(schema.empty_table())


def test_step_label_columns_equal_the_dict_rows() -> None:
    rng = random.Random(3)
    trajectories = [trajectory(rng, n) for n in [1, 2, 3, 7, 20] * 10]
    for provenance in (None, {"config": "c", "labeler": {"name": "exact"}}):
        columns, owner = step_label_columns(trajectories, provenance)
        expected = [r for t in trajectories for r in step_label_rows(t, provenance)]
        assert pa.Table.from_arrays(columns, schema=STEP_LABEL_SCHEMA).equals(_table(expected, STEP_LABEL_SCHEMA))
        assert owner.to_pylist() == [i for i, t in enumerate(trajectories) for _ in t.steps]
    columns, owner = step_label_columns([], {"config": "c"})
    assert pa.Table.from_arrays(columns, schema=STEP_LABEL_SCHEMA).num_rows == 0 and not len(owner)


def test_step_label_columns_copy_only_what_the_step_rows_copy() -> None:
    """A trajectory with every field set: a field StepLabel shares by name with Trajectory but that
    step_label_rows does not copy (or one added to either later) would differ here."""
    rng = random.Random(4)
    trajectories = [_full(Trajectory, n, rng) for n in (1, 4, 9)]
    trajectories = [dataclasses.replace(t, step_spans=tuple((i, i + 1) for i in range(len(t.steps))),
                                        step_segments=tuple("response" for _ in t.steps)) for t in trajectories]
    columns, _ = step_label_columns(trajectories, {"config": "c"})
    expected = [r for t in trajectories for r in step_label_rows(t, {"config": "c"})]
    got = pa.Table.from_arrays(columns, schema=STEP_LABEL_SCHEMA)
    assert got.equals(_table(expected, STEP_LABEL_SCHEMA))
    assert got.to_pylist() == expected


def test_step_label_columns_refuse_a_lone_surrogate_as_from_pylist_does() -> None:
    t = dataclasses.replace(trajectory(random.Random(5), 2), steps=("a\ud800", "b"))
    with pytest.raises(UnicodeEncodeError):
        step_label_columns([t], None)
