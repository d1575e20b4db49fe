"""prmflow: step-level pseudo-labels for process reward models, on Apache Beam, vLLM and DuckDB."""

__version__ = "0.1.0"
