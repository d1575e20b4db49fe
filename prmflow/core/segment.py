"""Step segmentation: split a solution into steps, keep each step's character span, and invert.

Every strategy returns spans into the original text rather than copies, so the exact text of the
first k steps (what a rollout continues from) is a slice of the original: ``prefix(k) + rest == text``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from prmflow.samplers.base import SamplerConfig

Strategy = Literal["lines", "paragraphs", "step-markers", "regex", "given", "model"]
STRATEGIES: tuple[str, ...] = ("lines", "paragraphs", "step-markers", "regex", "given", "model")
RULE_STRATEGIES: tuple[str, ...] = ("lines", "paragraphs", "step-markers", "regex")

# "Step 3:", "**Step 3.**", "## Step 3 -" at the start of a line.
STEP_MARKER = r"(?im)^[ \t]*(?:#+[ \t]*)?(?:\*\*)?step[ \t]*\d+[ \t]*(?:\*\*)?[:.\-)]"


@dataclass(frozen=True)
class SegmentConfig:
    strategy: Strategy = "lines"
    """How to split: lines (each non-blank line), paragraphs (blank-line separated), step-markers
    ("Step k:" at line start), regex (split on ``pattern``), given (the source already split it)."""
    pattern: str | None = None
    """Separator regex for ``regex``; the text between matches are the steps."""
    split_thinking: bool = True
    """Split ``<think>…</think>`` from the response and mark each step's segment."""
    think_open: str = "<think>"
    """Opening tag of the thinking part."""
    think_close: str = "</think>"
    """Closing tag of the thinking part."""
    joiner: str = "\n"
    """How ``given`` steps are joined into the trajectory text."""
    model: SamplerConfig | None = None
    """strategy ``model``: the model that re-splits each trace into steps (any sampler backend)."""
    fallback: Literal["lines", "paragraphs", "step-markers", "regex"] = "lines"
    """strategy ``model``: the rule-based split used first, and kept when the model's split changes
    the text or cannot be parsed."""
    model_max_tokens: int = 2048
    """strategy ``model``: tokens the model may write (its split repeats the whole trace)."""

    def __post_init__(self) -> None:
        self._verify_args()

    @property
    def rule(self) -> SegmentConfig:
        """The rule-based config a ``model`` split starts from."""
        return replace(self, strategy=self.fallback) if self.strategy == "model" else self

    def _verify_args(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"segment.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy == "model" and self.model is None:
            raise ValueError("segment.model must be a sampler section when strategy is 'model', got None")
        if self.fallback not in RULE_STRATEGIES:
            raise ValueError(f"segment.fallback must be one of {RULE_STRATEGIES}, got {self.fallback!r}")
        if self.model_max_tokens < 1:
            raise ValueError(f"segment.model_max_tokens must be >= 1, got {self.model_max_tokens}")
        if self.strategy == "regex":
            if not self.pattern:
                raise ValueError("segment.pattern must be a separator regex when strategy is 'regex', got None")
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"segment.pattern must be a valid regex, got {self.pattern!r}: {e}") from None
        if not self.think_open or not self.think_close:
            raise ValueError("segment.think_open and think_close must be non-empty")


@dataclass(frozen=True)
class Segmentation:
    text: str
    spans: tuple[tuple[int, int], ...]
    """[start, end) of each step in ``text``, whitespace trimmed, in order, non-overlapping."""
    segments: tuple[str, ...]
    """thinking | response, per step."""
    thinking: str | None
    response: str

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self.text[s:e] for s, e in self.spans)

    def prefix(self, k: int) -> str:
        """The exact text before step k (0-based), i.e. the first k steps and the separator after them.

        ``prefix(0)`` is whatever precedes the first step (often "" or "<think>\\n"); ``prefix(n)`` is
        the whole text. Segmenting ``prefix(k)`` again gives the first k steps.
        """
        return prefix_text(self.text, self.spans, k)


def prefix_text(text: str, spans: Sequence[Sequence[int]], k: int) -> str:
    """The exact text of the first k steps: everything up to where step k+1 starts."""
    n = len(spans)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}] for a {n}-step solution, got {k}")
    if k == n:
        return text
    return text[: spans[k][0]]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _split_by(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, cursor = [], start
    for m in separator.finditer(text, start, end):
        if m.end() == m.start():
            continue
        span = _trimmed(text, cursor, m.start())
        if span:
            spans.append(span)
        cursor = m.end()
    span = _trimmed(text, cursor, end)
    if span:
        spans.append(span)
    return spans


def _split_at_markers(text: str, start: int, end: int) -> list[tuple[int, int]]:
    starts = [m.start() for m in re.finditer(STEP_MARKER, text[start:end])]
    if not starts:
        return _split_by(text, start, end, re.compile(r"\n"))
    cuts = [start] + [start + s for s in starts if s > 0] + [end]
    spans = [_trimmed(text, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    return [s for s in spans if s]


_LINES = re.compile(r"\n")
_PARAGRAPHS = re.compile(r"\n[ \t]*\n\s*")


def _split_region(text: str, start: int, end: int, config: SegmentConfig) -> list[tuple[int, int]]:
    if config.strategy == "lines":
        return _split_by(text, start, end, _LINES)
    if config.strategy == "paragraphs":
        return _split_by(text, start, end, _PARAGRAPHS)
    if config.strategy == "step-markers":
        return _split_at_markers(text, start, end)
    if config.strategy == "regex":
        return _split_by(text, start, end, re.compile(config.pattern or ""))
    if config.strategy == "model":  # the rule-based split; the model re-splits it in its own stage
        return _split_region(text, start, end, config.rule)
    raise ValueError(f"strategy {config.strategy!r} splits no text; use segment_given() for given steps")


def split_thinking(text: str, config: SegmentConfig) -> tuple[tuple[int, int] | None, tuple[int, int]]:
    """Regions of the thinking part and the response. An unclosed <think> is all thinking."""
    if not config.split_thinking:
        return None, (0, len(text))
    open_at = text.find(config.think_open)
    if open_at < 0 or text[:open_at].strip():
        return None, (0, len(text))
    think_start = open_at + len(config.think_open)
    close_at = text.find(config.think_close, think_start)
    if close_at < 0:
        return (think_start, len(text)), (len(text), len(text))
    return (think_start, close_at), (close_at + len(config.think_close), len(text))


def segment(text: str, config: SegmentConfig | None = None) -> Segmentation:
    """Split ``text`` into steps with the configured strategy."""
    config = config or SegmentConfig()
    think, resp = split_thinking(text, config)
    spans: list[tuple[int, int]] = []
    segments: list[str] = []
    if think:
        t_spans = _split_region(text, think[0], think[1], config)
        spans += t_spans
        segments += ["thinking"] * len(t_spans)
    r_spans = _split_region(text, resp[0], resp[1], config)
    spans += r_spans
    segments += ["response"] * len(r_spans)
    return Segmentation(
        text=text,
        spans=tuple(spans),
        segments=tuple(segments),
        thinking=text[think[0] : think[1]] if think else None,
        response=text[resp[0] : resp[1]],
    )


def segment_given(steps: Sequence[str], joiner: str = "\n") -> Segmentation:
    """Build the text and spans from steps a source already split (ProcessBench, PRM800K)."""
    parts, spans, cursor = [], [], 0
    for i, step in enumerate(steps):
        if i:
            parts.append(joiner)
            cursor += len(joiner)
        spans.append((cursor, cursor + len(step)))
        parts.append(step)
        cursor += len(step)
    text = "".join(parts)
    return Segmentation(
        text=text, spans=tuple(spans), segments=("response",) * len(spans), thinking=None, response=text
    )


# -- model split ------------------------------------------------------------------------------

STEP_TAG = "<step>"
SPLIT_PROMPT = """Split the reasoning below into steps. Each step is one coherent move: a computation, a \
deduction, a check or a conclusion. Copy the text exactly, without changing, adding or dropping \
anything, and start every step with a line that holds only <step>.

Reasoning:
{text}

Steps:
"""


def split_prompt(text: str) -> str:
    """What the splitting model is asked; the trace's own ``<step>`` lines are escaped so they
    cannot pose as the model's markers."""
    return SPLIT_PROMPT.format(text=text.replace(STEP_TAG, "<step\u200b>"))


def _squeeze(s: str) -> str:
    return re.sub(r"\s+", "", s)


def align_pieces(text: str, pieces: Sequence[str]) -> list[tuple[int, int]] | None:
    """Spans of ``pieces`` in ``text`` when their concatenation is the text modulo whitespace (the
    model changed nothing but where lines break), else None."""
    if _squeeze("".join(pieces)) != _squeeze(text):
        return None
    spans, cursor = [], 0
    for piece in pieces:
        chars = _squeeze(piece)
        if not chars:
            continue
        i = cursor
        while text[i].isspace():
            i += 1
        start, k = i, 0
        while k < len(chars):
            if text[i].isspace():
                i += 1
                continue
            k, i = k + 1, i + 1
        spans.append((start, i))
        cursor = i
    return spans


def split_region(seg: Segmentation, config: SegmentConfig) -> tuple[int, int]:
    """The part of a trace the model re-splits: the thinking part when there is one (long traces
    live there), else the response. The other part keeps its rule-based steps."""
    think, resp = split_thinking(seg.text, config)
    return think if think is not None and think[1] > think[0] else resp


def model_split(seg: Segmentation, generated: str, config: SegmentConfig) -> Segmentation | None:
    """``seg`` with the steps of its :func:`split_region` re-split along the model's ``<step>``
    markers, or None when the model's steps are not that text modulo whitespace (then the
    rule-based split stands)."""
    start, end = split_region(seg, config)
    pieces = [p for p in re.split(r"(?m)^[ \t]*<step>[ \t]*$", generated) if p.strip()]
    found = align_pieces(seg.text[start:end], pieces) if pieces else None
    if not found:
        return None
    name = "thinking" if seg.thinking is not None and start < len(seg.text) - len(seg.response) else "response"
    new = [(start + a, start + b) for a, b in found]
    keep = [(sp, sg) for sp, sg in zip(seg.spans, seg.segments, strict=True) if sp[1] <= start or sp[0] >= end]
    steps = sorted(keep + [(sp, name) for sp in new])
    return Segmentation(seg.text, tuple(sp for sp, _ in steps), tuple(sg for _, sg in steps), seg.thinking, seg.response)
