"""Record dataclasses and their explicit pyarrow schemas."""

from prmflow.schemas.base import arrow_schema, column_docs, json_column, to_columns, to_row
from prmflow.schemas.dead_letter import DEAD_LETTER_SCHEMA, DeadLetter
from prmflow.schemas.problem import PROBLEM_SCHEMA, Problem
from prmflow.schemas.rollout import ROLLOUT_SCHEMA, START_STATE_SCHEMA, Rollout, StartState
from prmflow.schemas.step_label import STEP_LABEL_SCHEMA, StepLabel
from prmflow.schemas.trajectory import TRAJECTORY_SCHEMA, Trajectory
from prmflow.schemas.version import SCHEMA_VERSION

#: table name -> (record class, schema); the output layout and the DuckDB views follow this.
TABLES = {
    "problems": (Problem, PROBLEM_SCHEMA),
    "trajectories": (Trajectory, TRAJECTORY_SCHEMA),
    "steps": (StepLabel, STEP_LABEL_SCHEMA),
    "start_states": (StartState, START_STATE_SCHEMA),
    "rollouts": (Rollout, ROLLOUT_SCHEMA),
    "dead_letters": (DeadLetter, DEAD_LETTER_SCHEMA),
}

__all__ = [
    "SCHEMA_VERSION", "TABLES", "Problem", "Trajectory", "StepLabel", "StartState", "Rollout", "DeadLetter",
    "PROBLEM_SCHEMA", "TRAJECTORY_SCHEMA", "STEP_LABEL_SCHEMA", "START_STATE_SCHEMA", "ROLLOUT_SCHEMA",
    "DEAD_LETTER_SCHEMA", "arrow_schema", "column_docs", "json_column", "to_columns", "to_row",
]
