"""The one dead-letter builder: every stage that refuses a row (read, parse, segment, sample,
rollout) makes its DeadLetter here, so ids, truncation and sizes follow one rule."""

from __future__ import annotations

from prmflow.ids import content_id
from prmflow.schemas import DeadLetter

DETAIL_CHARS = 2000
"""A detail is a sentence for a human; the raw row is kept whole in ``raw``."""


def make_dead_letter(stage: str, source: str, reason: str, detail: str, raw: str | None, *,
                     key: tuple, source_file: str | None = None, location: int | None = None,
                     raw_bytes: int | None = None) -> DeadLetter:
    """A dead letter whose id is the content hash of ``key`` (what makes this refusal unique)."""
    if raw_bytes is None and raw is not None:
        raw_bytes = len(raw.encode("utf-8", "surrogatepass"))
    return DeadLetter(
        dead_letter_id=content_id(*key),
        stage=stage,
        source=source,
        reason=reason,
        detail=detail[:DETAIL_CHARS],
        source_file=source_file,
        location=location,
        raw=raw,
        raw_bytes=raw_bytes,
    )


def error_reason(error: str) -> str:
    """The stable code of a sampler error ("prompt_too_long: 300 tokens > 256" -> prompt_too_long)."""
    head = error.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) <= 40 else "sampler_error"
