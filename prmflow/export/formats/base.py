"""What every export format declares: its columns, each with an Arrow type and a meaning.

The Parquet writer takes the schema from here (never inferred from the first row), and the dataset
card's column table is rendered from the same declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type) for c in columns])


IDS = [
    Column("problem_id", pa.string(), "prmflow's problem id (content hash of source and prompt); the split key"),
    Column("trajectory_id", pa.string(), "prmflow's trajectory id: joins back to the run's trajectories and steps"),
]
"""Two columns every step format carries beyond the trainer's own, to trace a row back to the run; the
trainers ignore them (TRL's PRMTrainer removes every input column after tokenizing)."""
