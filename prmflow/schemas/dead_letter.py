"""DeadLetter: a row that could not be processed, kept with where it came from and why."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from prmflow.schemas.base import arrow_schema, col, fast_init


@fast_init
@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: str = col(pa.string(), "content hash of (stage, source_file, location, reason)")
    stage: str = col(pa.string(), "read | parse | sample | rollout | ...")
    source: str = col(pa.string(), "the input's name in the config")
    reason: str = col(pa.string(), "a stable code, e.g. bad_json, missing_field, too_large")
    detail: str = col(pa.string(), "a human sentence with the offending value")
    source_file: str | None = col(pa.string(), "file the row came from", default=None)
    location: int | None = col(pa.int64(), "line (JSONL, 1-based) or element index (JSON, 0-based)", default=None)
    raw: str | None = col(pa.string(), "the raw row (undecodable bytes as \\x escapes)", default=None)
    raw_bytes: int | None = col(pa.int64(), "size of the raw row in bytes", default=None)


DEAD_LETTER_SCHEMA = arrow_schema(DeadLetter, "dead_letters")
