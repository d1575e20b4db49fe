"""Beam sampling stage vs one bare ``LLM.generate`` on the same engine, prompts and parameters.

Prints generated tokens/s of (a) the whole Beam sampling stage (deterministic batching, RunInference,
segmentation into trajectories) and (b) a single ``LLM.generate`` call over all prompts, and the
ratio a/b. Both use the same in-process engine (loaded once, before timing), so the ratio measures
what the pipeline adds. Runs alternate a, b, a, b, ... and the median of each is reported, since
these machines are noisy.

    python bench/sampling.py [--model builtin:arith-tiny] [--problems 200] [--n 4] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import apache_beam as beam  # noqa: E402

from prmflow.config import InputConfig  # noqa: E402
from prmflow.core.prompts import SamplingConfig, render_prompt  # noqa: E402
from prmflow.core.segment import SegmentConfig  # noqa: E402
from prmflow.pipelines.common import beam_options  # noqa: E402
from prmflow.samplers import SamplerConfig  # noqa: E402
from prmflow.samplers.shared import shared_sampler  # noqa: E402
from prmflow.sources import ADAPTERS, arith_raw_records  # noqa: E402
from prmflow.transforms.sample import SampleTrajectories  # noqa: E402


def problems(count: int, seed: int):
    spec = InputConfig(format="arith", count=count, seed=seed)
    return [ADAPTERS["arith"](json.loads(r.text), r, spec).problem for r in arith_raw_records(count, seed)]


def run_beam(probs, sampler: SamplerConfig, sampling: SamplingConfig) -> tuple[float, int]:
    started = time.perf_counter()
    p = beam.Pipeline(options=beam_options([]))
    _ = p | beam.Create(probs) | SampleTrajectories(sampler, sampling, 0, SegmentConfig(), 10_000)
    result = p.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - started
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_name("engine_generated_tokens"))["counters"]
    return elapsed, sum(c.committed or c.attempted for c in counters)


def run_bare(probs, sampler: SamplerConfig, sampling: SamplingConfig) -> tuple[float, int]:
    import vllm

    llm = shared_sampler(sampler).sampler.llm
    # The parameters the pipeline's requests carry: per-request seeds and the sampled tokens' logprobs.
    prompts = [render_prompt(p.prompt, sampling) for p in probs]
    params = [vllm.SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                  max_tokens=sampling.max_tokens, seed=1000 + i, logprobs=0)
              for i in range(len(prompts))]
    started = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - started
    return elapsed, sum(len(c.token_ids) for o in outs for c in o.outputs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:arith-tiny")
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=200, help="requests per engine call in the pipeline")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    sampler = SamplerConfig(backend="vllm", model=args.model, dtype="float32", max_model_len=256,
                            kv_cache_memory_bytes=512 << 20, block_size=32, enforce_eager=True, seed=0)
    sampling = SamplingConfig(n=args.n, temperature=1.0, max_tokens=args.max_tokens, template="arith",
                              batch_size=args.batch_size)
    engine = shared_sampler(sampler)  # load the engine once, outside every timing
    tokenizer = engine.sampler.llm.get_tokenizer()
    # Same prompts on both sides: only those that fit the context with room for max_tokens.
    probs = [p for p in problems(args.problems, seed=11)
             if len(tokenizer.encode(render_prompt(p.prompt, sampling))) + args.max_tokens <= sampler.max_model_len]
    run_bare(probs[:8], sampler, sampling)  # warm-ups: the engine's first batches, Beam's first pipeline
    run_beam(probs[:8], sampler, sampling)

    beam_runs, bare_runs = [], []
    for _ in range(args.repeats):
        beam_runs.append(run_beam(probs, sampler, sampling))
        bare_runs.append(run_bare(probs, sampler, sampling))
    beam_tps = statistics.median(t / s for s, t in beam_runs)
    bare_tps = statistics.median(t / s for s, t in bare_runs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"workload: {len(probs)} problems x {args.n} samples, max_tokens {args.max_tokens}, model {args.model}")
    print(f"(a) Beam sampling stage: {beam_tps:9.1f} generated tokens/s  (runs: {[round(t / s) for s, t in beam_runs]})")
    print(f"(b) bare LLM.generate:   {bare_tps:9.1f} generated tokens/s  (runs: {[round(t / s) for s, t in bare_runs]})")
    print(f"ratio pipeline/bare: {beam_tps / bare_tps:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
