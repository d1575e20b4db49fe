"""``--tokenizer DIR`` for the openrlhf format: prove, with the model's own tokenizer, that OpenRLHF 0.9.5
will find every label's position, before anything is written.

OpenRLHF encodes ``--placeholder_token`` and each reward token on their own
(``openrlhf.utils.utils.convert_token_to_id``: ``tokenizer.encode(token, add_special_tokens=False)``, which
must be one id), then looks for the placeholder's id in the input tokenized without special tokens. So:

- the reward tokens ``+`` and ``-`` must each be one token, and different from each other;
- of the placeholder's two spellings (as written after a step, e.g. ``" ки"``, and bare, ``"ки"``), one
  must be a single token that occurs in every input exactly once per label. Where both qualify they are
  the same id; where neither does, the export is refused (exit 2) with the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from prmflow.export.config import ExportConfig, ExportError
from prmflow.export.formats.openrlhf import REWARD_TOKENS


def load(path: str):
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - transformers is in the train/hf extras
        raise ExportError(f"--tokenizer needs transformers ({e}); pip install 'prmflow[hf]'") from e
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ExportError(f"--tokenizer {path!r} cannot be loaded as a Hugging Face tokenizer ({e})") from e


def _one_token(tokenizer, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def check_openrlhf(tokenizer, config: ExportConfig, rows: Sequence[dict]) -> str:
    """The placeholder text to pass as ``--placeholder_token``; ExportError naming the fix otherwise."""
    reward_ids = []
    for token in REWARD_TOKENS:
        token_id = _one_token(tokenizer, token)
        if token_id is None:
            raise ExportError(f"--tokenizer: the reward token {token!r} is {len(tokenizer.encode(token, add_special_tokens=False))} "
                              f"tokens, OpenRLHF needs one; use a tokenizer that has it as a single token")
        reward_ids.append(token_id)
    if reward_ids[0] == reward_ids[1]:
        raise ExportError("--tokenizer: the reward tokens + and - are the same token; use another tokenizer")
    candidates = list(dict.fromkeys([config.placeholder, config.marker]))
    failures = []
    for text in candidates:
        token_id = _one_token(tokenizer, text)
        if token_id is None:
            failures.append(f"{text!r} is {len(tokenizer.encode(text, add_special_tokens=False))} tokens")
            continue
        if token_id in reward_ids:
            failures.append(f"{text!r} is the same token as a reward token")
            continue
        bad = next(((i, n) for i, r in enumerate(rows)
                    if (n := tokenizer.encode(r["input"], add_special_tokens=False).count(token_id)) != len(r["label"])),
                   None)
        if bad is None:
            return text
        i, n = bad
        failures.append(f"{text!r} (one token) occurs {n} times for {len(rows[i]['label'])} labels in the input of "
                        f"trajectory {rows[i]['trajectory_id']}")
    raise ExportError(f"--tokenizer: OpenRLHF would misplace labels: {'; '.join(failures)}; pick a --placeholder "
                      f"that this tokenizer keeps as one token after a space (or add it to the tokenizer as a "
                      f"special token and pass the saved tokenizer)")
