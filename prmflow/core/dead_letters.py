"""The one dead-letter builder: every stage that refuses a row (read, parse, segment, sample,
rollout) makes its DeadLetter here, so ids, truncation and sizes follow one rule, and building a
dead letter cannot itself fail on what the row holds (lone surrogates, huge values)."""

from __future__ import annotations

from prmflow.ids import content_id
from prmflow.schemas import DeadLetter
from prmflow.sources.base import BadRecord, RawRecord, clean_text

#: characters of ``raw`` and ``detail`` kept: a dead letter is for finding and reading the row, and
#: a megabyte of it in every row would make the table the largest output of a bad run
MAX_RAW_CHARS = 65536
DETAIL_CHARS = 2000


def safe_text(text: object, limit: int) -> str | None:
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


def make_dead_letter(stage: str, source: str, reason: str, detail: str | None, raw: str | None, *,
                     key: tuple, source_file: str | None = None, location: int | None = None,
                     raw_bytes: int | None = None) -> DeadLetter:
    """A dead letter whose id is the content hash of ``key`` (what makes this refusal unique)."""
    if raw_bytes is None and isinstance(raw, str):
        raw_bytes = len(raw.encode("utf-8", "surrogatepass"))
    reason = safe_text(reason or "unexpected_error", 100) or "unexpected_error"
    return DeadLetter(
        dead_letter_id=content_id(*key),
        stage=stage,
        source=safe_text(source, 1000),
        reason=reason,
        detail=safe_text(detail, DETAIL_CHARS) or reason,
        source_file=safe_text(source_file, 4096),
        location=location,
        raw=safe_text(raw, MAX_RAW_CHARS),
        raw_bytes=raw_bytes,
    )


def record_dead_letter(stage: str, source: str, error: BadRecord, raw: RawRecord | None = None,
                       raw_text: str | None = None) -> DeadLetter:
    """The dead letter of a raw row (or of ``raw_text``) refused with ``error``."""
    text = safe_text(raw.text if raw is not None else raw_text, MAX_RAW_CHARS)
    reason = safe_text(getattr(error, "reason", None) or "unexpected_error", 100)
    size = None
    if raw is not None:
        size = raw.size or len((raw.text or "").encode("utf-8", "surrogatepass"))
    return make_dead_letter(
        stage, source, reason, getattr(error, "detail", None) or str(error), text,
        key=(stage, source, raw.source_file if raw else None, raw.location if raw else None, reason, text),
        source_file=raw.source_file if raw else None, location=raw.location if raw else None, raw_bytes=size,
    )


def error_reason(error: str) -> str:
    """The stable code of a sampler error ("prompt_too_long: 300 tokens > 256" -> prompt_too_long)."""
    head = error.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) <= 40 else "sampler_error"
