"""Duplicate rows: the same trajectory read twice is one trajectory.

Ids are content hashes (``prmflow.ids``), so two rows with identical content (a ProcessBench row
repeated, or copied under another ``id``) give one ``trajectory_id``; written twice they would be two
rows with one id and steps with duplicate ``step_id``s. The pipeline groups by ``trajectory_id`` and
keeps one, chosen here, and counts the others as ``duplicates``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prmflow.schemas import Problem, Trajectory

Item = tuple[Problem, Trajectory]


def read_order(item: Item) -> tuple:
    """Where the row was read: file, then line or element index. Rows without a file (sampled
    trajectories, generated problems) sort by source and id, so the choice never depends on the
    order in which a runner delivers them."""
    problem, trajectory = item
    return (
        problem.source_file is None, problem.source_file or "", problem.source_index is None,
        problem.source_index or 0, problem.source, trajectory.trajectory_id,
    )


def keep_first_read(items: Iterable[Item]) -> tuple[Item, int]:
    """Of items sharing one trajectory_id: the earliest read, and how many others were dropped."""
    items = list(items)
    if not items:
        raise ValueError("keep_first_read needs at least one item")
    return min(items, key=read_order), len(items) - 1
