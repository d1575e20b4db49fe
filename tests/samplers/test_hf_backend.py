"""The transformers backend on the tiny model."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from prmflow.samplers import HFSampler, SamplingRequest

pytestmark = pytest.mark.engine


def token_ids(result: Any) -> list[tuple[int, ...]]:
    return [c.token_ids for c in result.completions]


def test_seeded_samples_do_not_depend_on_the_batch(hf_sampler: HFSampler) -> None:
    req = SamplingRequest("r", "Ben has 3 pencils.", n=2, max_tokens=16, seed=11)
    others = [
        SamplingRequest(f"o{i}", "Cleo sells shells " * (i + 1), max_tokens=20, seed=i) for i in range(3)
    ]
    alone = hf_sampler.generate([req])[0]
    batched = hf_sampler.generate([*others, req])[-1]  # different padding, batch split, neighbours
    assert token_ids(alone) == token_ids(batched)
    assert [c.text for c in alone.completions] == [c.text for c in batched.completions]
    for a, b in zip(alone.completions, batched.completions, strict=True):
        assert a.cumulative_logprob == pytest.approx(b.cumulative_logprob, abs=1e-3)
    reseeded = hf_sampler.generate([dataclasses.replace(req, seed=12)])[0]
    assert token_ids(reseeded) != token_ids(alone)


def test_n_samples(hf_sampler: HFSampler) -> None:
    result = hf_sampler.generate([SamplingRequest("n", "Eve eats 5 cookies.", n=3, max_tokens=12, seed=1)])[0]
    assert [c.index for c in result.completions] == [0, 1, 2]
    assert len({c.token_ids for c in result.completions}) == 3
    for c in result.completions:
        assert c.finish_reason in ("stop", "length")
        assert 1 <= len(c.token_ids) <= 12
        assert c.finish_reason == "stop" or len(c.token_ids) == 12
        assert c.cumulative_logprob is not None and c.cumulative_logprob < 0
    assert result.prompt_tokens > 0 and result.cached_prompt_tokens == 0


def test_stop_string_cuts_text(hf_sampler: HFSampler) -> None:
    req = SamplingRequest("s", "Finn collects 6 stickers.", max_tokens=40, seed=5)
    full = hf_sampler.generate([req])[0].completions[0]
    runs = [m.group() for m in re.finditer(r"[A-Za-z0-9]{2,}", full.text[3:])]
    assert runs, full.text
    stop = runs[len(runs) // 2]
    cut = hf_sampler.generate([dataclasses.replace(req, stop=(stop, "never-appears"))])[0].completions[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]  # same samples, stopped early
    assert len(cut.token_ids) < len(full.token_ids) or full.finish_reason == "stop"


def test_greedy_and_too_long_prompt(hf_sampler: HFSampler, tiny_tokenizer: Any) -> None:
    long_prompt = "Gus has 7 books. " * 60
    n_tokens = len(tiny_tokenizer(long_prompt)["input_ids"])
    g1 = SamplingRequest("g1", "Ada has 12 apples.", max_tokens=8, temperature=0, seed=1)
    g2 = dataclasses.replace(g1, request_id="g2", seed=2)
    r1, long, r2 = hf_sampler.generate([g1, SamplingRequest("long", long_prompt), g2])
    assert long.error == f"prompt_too_long: {n_tokens} tokens >= max_model_len 256" and long.completions == ()
    assert r1.error is None and token_ids(r1) == token_ids(r2)


def test_chat_template(tiny_model_dir: Any, tiny_tokenizer: Any) -> None:
    from prmflow.samplers import SamplerConfig

    sampler = HFSampler(
        SamplerConfig(backend="hf", model=str(tiny_model_dir), chat_template=True, device="cpu")
    )
    try:
        result = sampler.generate([SamplingRequest("c", "Ben has 3 pencils.", max_tokens=4, seed=1)])[0]
        rendered = "<|user|>Ben has 3 pencils.</s><|assistant|>"
        assert result.prompt_tokens == len(tiny_tokenizer(rendered, add_special_tokens=False)["input_ids"])
        assert sampler.metrics()["requests"] == 1
    finally:
        sampler.close()


def test_batches_respect_the_context(hf_sampler: HFSampler, tiny_tokenizer: Any) -> None:
    """A near-full prompt and a short prompt with a long generation never share a padded batch
    longer than the context, and each still gets its own cap."""
    prompt = "Jon"
    while len(tiny_tokenizer(prompt + " has 1 shell.")["input_ids"]) < 240:
        prompt += " has 1 shell."
    near_full = SamplingRequest("full", prompt, max_tokens=100, seed=1)
    short = SamplingRequest("short", "Ada has", max_tokens=100, seed=2)
    full_r, short_r = hf_sampler.generate([near_full, short])
    for r in (full_r, short_r):
        assert r.error is None
        assert r.prompt_tokens + len(r.completions[0].token_ids) <= 256
    assert token_ids(short_r) == token_ids(hf_sampler.generate([short])[0])


def test_inverse_cdf_follows_the_distribution_and_never_picks_zero_mass() -> None:
    import torch

    from prmflow.samplers.hf_backend import _inverse_cdf

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]]).repeat(4, 1)
    # the edges: u = 0 skips a zero-mass token only after it; u = 1 (float rounding) stays inside
    picks = _inverse_cdf(torch, probs, torch.tensor([0.0, 0.1, 0.75, 1.0])).tolist()
    assert picks == [0, 2, 3, 3]
    trailing = _inverse_cdf(torch, torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([1.0])).tolist()
    assert trailing == [1]  # never the zero-mass tail
    n = 20000
    uniform = torch.rand(n, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(_inverse_cdf(torch, probs[:1].expand(n, -1), uniform), minlength=4) / n
    assert counts[1] == 0
    assert torch.allclose(counts, probs[0], atol=0.015)


def test_nucleus_keeps_the_smallest_prefix_reaching_top_p() -> None:
    import torch

    from prmflow.samplers.hf_backend import _nucleus

    n = 20000
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).expand(n, -1)
    uniform = torch.rand(n, generator=torch.Generator().manual_seed(1))
    picks = _nucleus(torch, probs, torch.full((n, 1), 0.7), uniform)
    counts = torch.bincount(picks, minlength=4) / n
    assert counts[0] == counts[2] == 0  # 0.5 + 0.3 reaches 0.7: only tokens 1 and 3 remain
    assert counts[1] == pytest.approx(0.5 / 0.8, abs=0.015)
    only_top = _nucleus(torch, probs[:2], torch.full((2, 1), 0.01), torch.tensor([0.0, 0.999]))
    assert only_top.tolist() == [1, 1]  # top_p below the top token's mass: the top token alone


def test_a_sample_depends_on_its_seed_and_temperature_only(hf_sampler: HFSampler) -> None:
    """Greedy rows and sampled rows share a batch without changing one another."""
    greedy = SamplingRequest("g", "Ben has 3 pencils.", max_tokens=12, temperature=0.0)
    nucleus = SamplingRequest("p", "Cleo sells shells", n=2, max_tokens=12, seed=5, top_p=0.8)
    both = hf_sampler.generate([greedy, nucleus])
    assert token_ids(both[0]) == token_ids(hf_sampler.generate([greedy])[0])
    assert token_ids(both[1]) == token_ids(hf_sampler.generate([nucleus])[0])
