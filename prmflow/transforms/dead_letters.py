"""Dead letters: a malformed row becomes data with its reason, and a counter per reason."""

from __future__ import annotations

import apache_beam as beam

from prmflow.ids import content_id
from prmflow.schemas import DeadLetter
from prmflow.sources import BadRecord, RawRecord

DEAD = "dead_letters"
NAMESPACE = "prmflow"


def dead_letter(stage: str, source: str, error: BadRecord, raw: RawRecord | None = None, raw_text: str | None = None) -> DeadLetter:
    text = raw.text if raw is not None else raw_text
    return DeadLetter(
        dead_letter_id=content_id(stage, source, raw.source_file if raw else None, raw.location if raw else None, error.reason, text),
        stage=stage,
        source=source,
        reason=error.reason,
        detail=error.detail,
        source_file=raw.source_file if raw else None,
        location=raw.location if raw else None,
        raw=text,
        raw_bytes=(raw.size or len((text or "").encode("utf-8", "surrogatepass"))) if raw else None,
    )


def count_dead(stage: str, reason: str) -> None:
    beam.metrics.Metrics.counter(NAMESPACE, f"{stage}_dead_{reason}").inc()
