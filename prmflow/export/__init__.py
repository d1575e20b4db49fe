"""``prmflow export``: a finished run's step labels in a PRM trainer's format (TRL, OpenRLHF,
Math-Shepherd, prmflow's own weighted one) or its problems and R3 start states as verl RL data, with a
dataset card. Pure: DuckDB and pyarrow over the run's Parquet, no Beam."""

from prmflow.export.api import ExportResult, export
from prmflow.export.config import FORMATS, LABELS, ExportConfig, ExportError

__all__ = ["FORMATS", "LABELS", "ExportConfig", "ExportError", "ExportResult", "export"]
