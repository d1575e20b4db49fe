"""Start states: which prefix of a trajectory or demonstration a rollout continues from.

A start state is ``(k, prefix)``: ``k`` steps of the trajectory are kept and a rollout continues
from ``prefixes[k]``, the exact text of the first k steps (``prmflow.core.segment.prefix_text(text,
spans, k)``: everything up to where step k+1 starts, so ``prefixes[0]`` is whatever precedes the
first step and ``prefixes[n]`` is the whole text). This module only chooses *which* start states to
use; it takes the prefix strings as input so it does not depend on how a solution was segmented.

Two schedules:

* :func:`all_steps` — Math-Shepherd (Wang et al. 2024): one start state at every step boundary.
  Step i (0-based) is labelled by the value of the prefix that *ends* with it, ``k = i + 1``.
* :func:`reverse_curriculum` — R3 (Xi et al. 2024, "Training Large Language Models for Reasoning
  through Reverse Curriculum Reinforcement Learning"): start near the end of a correct
  demonstration and slide the start state backwards stage by stage, so the outcome reward of the
  early stages is informative about the last steps, and the final stage is the original task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

CurriculumMode = Literal["steps", "words"]
CURRICULUM_MODES: tuple[str, ...] = ("steps", "words")

_WORD = re.compile(r"\S+")


def all_steps(n_steps: int, *, include_full: bool = True) -> list[int]:
    """Math-Shepherd start states: every k in ``1..n_steps``, in order.

    Labelling step i (0-based) needs the value of prefix ``k = i + 1``, so the full solution
    (``k = n_steps``) is included by default: it is what labels the last step. It needs no rollouts
    (a finished solution has nothing left to complete; its value is its own verified outcome, 1 or
    0), so a caller that fills it from the outcome passes ``include_full=False`` to get
    ``1..n_steps-1``. ``k = 0`` (the bare question) never labels a step and is not returned.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    last = n_steps if include_full else n_steps - 1
    return list(range(1, last + 1))


@dataclass(frozen=True)
class StartStateSpec:
    """One start state of a reverse curriculum."""

    stage: int
    """0-based stage; stage 0 keeps the most of the demonstration, the last stage the least."""
    k: int | None
    """Whole steps kept (``mode="steps"``); None for ``mode="words"``, whose cuts ignore steps."""
    char_end: int
    """The start state's text is ``text[:char_end]`` where text is the whole demonstration."""
    fraction: float
    """Share of the demonstration kept: ``k / n_steps`` (steps) or words kept / words (words)."""


def reverse_curriculum_ks(n_steps: int, stages: int) -> list[int]:
    """Step counts kept at each R3 stage, stage 0 first: evenly spaced from ``n-1`` down to 0.

    Stage s keeps ``round_half_up((n-1) * (S-1-s) / (S-1))`` steps, so stage 0 leaves exactly one
    step to generate and the last stage starts from scratch (k = 0), which is the original task.
    ``stages == 1`` gives ``[0]``: a one-stage curriculum is plain outcome-reward training. When
    ``stages > n_steps`` rounding repeats values; repeats are dropped (first kept), so the result
    is strictly decreasing and has ``min(stages, max(n_steps, 1))`` entries.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    if n_steps == 0 or stages == 1:
        return [0]
    top, span = n_steps - 1, stages - 1
    ks: list[int] = []
    for s in range(stages):
        # Integer round-half-up of top * (span - s) / span: exact, no float drift between platforms.
        k = (2 * top * (span - s) + span) // (2 * span)
        if not ks or k != ks[-1]:
            ks.append(k)
    return ks


def reverse_curriculum(
    prefixes: Sequence[str],
    stages: int,
    mode: CurriculumMode = "steps",
) -> list[StartStateSpec]:
    """R3 start states of one demonstration, stage 0 (closest to the end) first.

    ``prefixes[k]`` is the exact text of the first k steps, ``k = 0..n`` (so ``len(prefixes) ==
    n + 1``); each must be a prefix of the next, as ``prmflow.core.segment.prefix_text`` guarantees, so
    ``char_end`` is an offset into ``prefixes[-1]``, the whole demonstration.

    * ``mode="steps"``: the ks of :func:`reverse_curriculum_ks`; ``char_end = len(prefixes[k])``.
    * ``mode="words"``, for prose with no line structure (pass ``prefixes=("", text)`` when there
      are no steps): stage s keeps ``floor(W * (S-1-s) / S)`` of the W whitespace-separated words
      (fractions ``(S-1)/S, ..., 1/S, 0`` — the same spacing as steps mode with S steps). The cut is
      at the end of the last kept word, *before* the whitespace after it, because BPE tokenizers
      attach a leading space to the next word; cutting after the space would force an unnatural
      token boundary on the rollout. Cuts that repeat (``W < S``) are dropped, first kept.

    Stages are renumbered 0..m-1 after dropping repeats, so ``stage`` is always consecutive and
    ``k``/``char_end`` strictly decrease with it. Deterministic: no randomness, integer arithmetic.
    """
    if mode not in CURRICULUM_MODES:
        raise ValueError(f"mode must be one of {CURRICULUM_MODES}, got {mode!r}")
    if len(prefixes) < 1:
        raise ValueError(f"prefixes must hold at least prefixes[0], got {len(prefixes)} entries")
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    text = prefixes[-1]
    for k, prefix in enumerate(prefixes):
        if not text.startswith(prefix):
            raise ValueError(
                f"prefixes[{k}] must be a prefix of prefixes[-1] (the whole text), got {prefix[:40]!r}"
            )
    n = len(prefixes) - 1
    if mode == "steps":
        return [
            StartStateSpec(stage=i, k=k, char_end=len(prefixes[k]), fraction=k / n if n else 0.0)
            for i, k in enumerate(reverse_curriculum_ks(n, stages))
        ]
    word_ends = [m.end() for m in _WORD.finditer(text)]
    n_words = len(word_ends)
    specs: list[StartStateSpec] = []
    last_kept = -1
    for s in range(stages):
        kept = n_words * (stages - 1 - s) // stages
        if kept == last_kept:
            continue
        last_kept = kept
        specs.append(
            StartStateSpec(
                stage=len(specs),
                k=None,
                char_end=word_ends[kept - 1] if kept else 0,
                fraction=kept / n_words if n_words else 0.0,
            )
        )
    return specs
