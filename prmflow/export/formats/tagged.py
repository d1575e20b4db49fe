"""The placeholder layout that OpenRLHF and Math-Shepherd share: the prompt, then every step followed by
one placeholder token, so that a trainer finds each step's score position by looking for that token.

A step (or a prompt) that itself contains the placeholder's text would add a position with no label
and shift every label after it: OpenRLHF's ``ProcessRewardDataset`` assigns labels to the placeholder
positions in order. prmflow never escapes text (an escape changes what the model reads and is a second
tokenizer-dependent guess); such a trajectory is dropped in selection (``placeholder_in_text``, counted
in the dataset card), and :func:`tagged_input` re-checks the count it built.
"""

from __future__ import annotations

import re

from prmflow.export.config import ExportError

STEP_JOINER = "\n"
"""Between the prompt and the first step, and between steps (Math-Shepherd's released ``input`` puts each
step on its own line)."""


def tagged_input(prompt: str, steps: tuple[str, ...], placeholder: str, tags: list[str] | None = None) -> str:
    """``prompt \\n step_1<tag> \\n step_2<tag> ...``; the tag is the placeholder, or ``tags[i]`` for step i."""
    marker = placeholder.strip()
    parts = [step + (placeholder if tags is None else tags[i]) for i, step in enumerate(steps)]
    text = prompt + STEP_JOINER + STEP_JOINER.join(parts)
    if tags is None and text.count(marker) != len(steps):
        raise ExportError(f"the placeholder {marker!r} occurs {text.count(marker)} times for {len(steps)} steps: "
                          f"a step or the prompt contains it")
    return text


FIRST_PREFIX = "Step 1:"
"""Math-Shepherd: what TRL's converter splits the first step off the prompt at; it must occur once before the first tag."""


def prefixed(steps: tuple[str, ...]) -> tuple[str, ...]:
    """``Step k: <step>`` for step k (1-based); a step already starting with its own ``Step k:`` is kept."""
    return tuple(step if re.match(rf"Step {k}:", step) else f"Step {k}: {step}" for k, step in enumerate(steps, 1))


def prefix_clash(prompt: str, steps: tuple[str, ...]) -> bool:
    """Whether TRL's converter would cut the prompt at a ``Step 1:`` that is not the first step's prefix."""
    return (prompt + "\n" + prefixed(steps[:1])[0]).count(FIRST_PREFIX) != 1 if steps else False
