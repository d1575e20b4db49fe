"""Dead letters: a malformed row becomes data with its reason, and a counter per reason."""

from __future__ import annotations

import apache_beam as beam

from prmflow.ids import content_id
from prmflow.schemas import DeadLetter
from prmflow.sources import BadRecord, RawRecord
from prmflow.sources.base import clean_text

DEAD = "dead_letters"
NAMESPACE = "prmflow"


#: characters of ``raw`` and ``detail`` kept: a dead letter is for finding and reading the row, and
#: a megabyte of it in every row would make the table the largest output of a bad run
MAX_RAW_CHARS = 65536
MAX_DETAIL_CHARS = 2000


def _safe(text: object, limit: int) -> str | None:
    """Text that any writer accepts: str, lone surrogates replaced, at most ``limit`` characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception as e:  # noqa: BLE001 - e.g. an int too long for str(); the dead letter must not fail
            text = f"<{type(text).__name__} that cannot be shown: {type(e).__name__}>"
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return clean_text(text)[0]


def dead_letter(stage: str, source: str, error: BadRecord, raw: RawRecord | None = None, raw_text: str | None = None) -> DeadLetter:
    """The dead letter of a row; it cannot fail on what the row holds (lone surrogates, a huge detail)."""
    text = _safe(raw.text if raw is not None else raw_text, MAX_RAW_CHARS)
    reason = _safe(getattr(error, "reason", None) or "unexpected_error", 100)
    size = None
    if raw is not None:
        size = raw.size or len((raw.text or "").encode("utf-8", "surrogatepass"))
    return DeadLetter(
        dead_letter_id=content_id(stage, source, raw.source_file if raw else None, raw.location if raw else None, reason, text),
        stage=stage,
        source=_safe(source, 1000),
        reason=reason,
        detail=_safe(getattr(error, "detail", None) or str(error), MAX_DETAIL_CHARS) or reason,
        source_file=_safe(raw.source_file, 4096) if raw else None,
        location=raw.location if raw else None,
        raw=text,
        raw_bytes=size,
    )


def count_dead(stage: str, reason: str) -> None:
    beam.metrics.Metrics.counter(NAMESPACE, f"{stage}_dead_{reason}").inc()
