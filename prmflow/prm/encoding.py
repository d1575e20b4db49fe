"""How a (prompt, steps) pair becomes token ids, and where each step's score is read.

The sequence is ``[BOS] template(prompt) step_1 SEP step_2 SEP ... step_n SEP``; the score of step k is
read at the last token of ``step_k SEP``. Each piece is tokenized on its own and the ids concatenated
(as TRL's PRMTrainer does), so a step's last token is exactly where its piece ends whatever the
tokenizer would merge across a boundary. A step containing the separator text would look like two
steps to the model, so the separator is escaped inside a step: every occurrence becomes one space
(repeated until none is left; separators made only of spaces are refused, so this ends). The same
rule runs at training and at scoring time, and is saved in ``prm.json``.

Pure Python over any tokenizer with ``__call__(texts, add_special_tokens=False)`` and
``bos_token_id``: no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ESCAPE = " "


@dataclass(frozen=True)
class StepFormat:
    separator: str = "\n"
    """Text after every step; its last token carries the step's score."""
    prompt_template: str = "{prompt}\n"
    """The problem before the first step; ``{prompt}`` is replaced by the prompt text."""

    def __post_init__(self) -> None:
        if not self.separator or not self.separator.strip(" "):
            raise ValueError(f"separator must be a non-empty string that is not only spaces, got {self.separator!r}")
        if "{prompt}" not in self.prompt_template:
            raise ValueError(f"prompt_template must contain {{prompt}}, got {self.prompt_template!r}")

    def clean_step(self, step: str) -> str:
        """The step as the model sees it: the separator inside it escaped (see the module docstring)."""
        while self.separator in step:
            step = step.replace(self.separator, ESCAPE)
        return step

    def prompt_text(self, prompt: str) -> str:
        return self.prompt_template.replace("{prompt}", prompt)

    def pieces(self, prompt: str, steps: Sequence[str]) -> list[str]:
        return [self.prompt_text(prompt), *(self.clean_step(s) + self.separator for s in steps)]

    def to_json(self) -> dict[str, Any]:
        return {"separator": self.separator, "prompt_template": self.prompt_template, "escape": ESCAPE,
                "score_position": "the last token of each step followed by the separator"}


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    positions: list[int | None]
    """Per step: the index of its last token in ``input_ids``; None when it fell beyond max_length."""
    starts: list[int] | None = None
    """Per step: the index of its first token (the log-probability head reads the step's tokens)."""
    text_ends: list[int] | None = None
    """Per step: the index of the last token of the step's own text, before the separator's tokens
    (equal to the position when the step and its separator share a token)."""


def encode_many(tokenizer: Any, fmt: StepFormat, examples: Sequence[tuple[str, Sequence[str]]],
                max_length: int) -> list[Encoded]:
    """Token ids and per-step score positions of every (prompt, steps) pair; one tokenizer call for all.

    Each step's own text is also tokenized alone: the longest common prefix of its ids and the ids of
    ``step + separator`` is the step's text, the rest the separator's tokens (``text_ends``)."""
    pieces = [fmt.pieces(prompt, steps) for prompt, steps in examples]
    flat = [p for ps in pieces for p in ps]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    bare = [fmt.clean_step(s) for _, steps in examples for s in steps]
    bare_ids = tokenizer(bare, add_special_tokens=False)["input_ids"] if bare else []
    bos = getattr(tokenizer, "bos_token_id", None)
    out, i, k = [], 0, 0
    for ps in pieces:
        seq: list[int] = [bos] if bos is not None else []
        positions: list[int | None] = []
        starts: list[int] = []
        text_ends: list[int] = []
        for j, piece_ids in enumerate(ids[i : i + len(ps)]):
            start = len(seq)
            seq.extend(piece_ids)
            if j > 0:  # a piece without tokens (a tokenizer that drops the separator) has no position
                end = len(seq) - 1
                positions.append(end if piece_ids and end < max_length else None)
                alone = bare_ids[k]
                k += 1
                n = 0
                while n < min(len(alone), len(piece_ids)) and alone[n] == piece_ids[n]:
                    n += 1
                starts.append(start)
                text_ends.append(start + max(n, 1) - 1 if piece_ids else end)
        i += len(ps)
        out.append(Encoded(seq[:max_length], positions, starts, text_ends))
    return out
