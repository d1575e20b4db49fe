"""Bumped whenever a column is added, removed or changes meaning; written into every Parquet file."""

SCHEMA_VERSION = 1
