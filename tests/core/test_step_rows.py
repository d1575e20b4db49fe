"""The fast step-row builder equals the dataclass path, column for column and in column order."""

from __future__ import annotations

import dataclasses
import random

from prmflow.core.trajectories import step_label_rows, step_labels
from prmflow.schemas import StepLabel, Trajectory, to_row


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
