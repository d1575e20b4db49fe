"""DuckDB views and canned label-quality queries over prmflow outputs."""

from prmflow.analysis.summary import summary
from prmflow.analysis.views import connect

__all__ = ["connect", "summary"]
