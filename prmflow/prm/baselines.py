"""Two step scorers that need no training, the rows every trained PRM must beat.

* :class:`LikelihoodScorer`: a step's score is the lowest probability the policy LM gave one of its
  tokens (the separator after the final step left out: the policy ended there with ``</s>``). A
  sampling slip is a low-probability token, so on solutions from the scorer's own policy this ranks
  steps well (issue 27: step AUC 0.979 on arith) without reading a single label.
* :func:`regex_verifier`: every ``a op b = c`` line is recomputed (the arith checker's parser); a
  wrong one scores 0, any other line 1. It sees arithmetic slips, never a wrong operand.

torch is imported by :class:`LikelihoodScorer` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from prmflow.prm.encoding import StepFormat, encode_many


def regex_verifier(steps: Sequence[str]) -> list[float]:
    """1.0 per step, 0.0 for an equation line whose arithmetic is wrong."""
    from prmflow.domains.arith.checker import parse_line

    out = []
    for step in steps:
        role, eq, _ = parse_line(step.strip())
        out.append(0.0 if role == "equation" and eq is not None and not eq.arithmetic_ok else 1.0)
    return out


class LikelihoodScorer:
    """``score_many`` like :class:`~prmflow.prm.scorer.PRMScorer`: per step, exp(min token log-prob)."""

    threshold = 0.5
    head = "likelihood"

    def __init__(self, model: str, step_format: StepFormat | None = None, device: str = "auto",
                 batch_size: int = 16, max_length: int = 2048) -> None:
        from prmflow.models import resolve_model_path
        from prmflow.prm.model import load_causal_lm, load_tokenizer, resolve_device

        path = resolve_model_path(model)
        self.format = step_format or StepFormat()
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = load_tokenizer(path)
        self.lm = load_causal_lm(path).to(self.device).eval()

    def score(self, prompt: str, steps: Sequence[str]) -> list[float | None]:
        return self.score_many([(prompt, steps)])[0]

    def score_many(self, examples: Sequence[tuple[str, Sequence[str]]]) -> list[list[float | None]]:
        import torch

        from prmflow.prm.model import collate

        encoded = encode_many(self.tokenizer, self.format, examples, self.max_length)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        out: list[list[float | None]] = [[] for _ in encoded]
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch, index = collate([encoded[i] for i in chunk], self.tokenizer.pad_token_id, self.device)
                logits = self.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
                lp = torch.log_softmax(logits[batch.tok_rows, batch.tok_cols - 1].float(), dim=-1)
                lp = lp.gather(1, batch.input_ids[batch.tok_rows, batch.tok_cols].unsqueeze(1)).squeeze(1)
                lo = torch.zeros(len(batch.rows)).scatter_reduce(0, batch.tok_step.cpu(), lp.cpu(), "amin",
                                                                 include_self=False)
                probs = lo.exp().tolist()
                for i, where in zip(chunk, index, strict=True):
                    out[i] = [None if w is None else probs[w] for w in where]
        return out
