"""Model backends behind one interface: ``make_sampler(SamplerConfig(...)).generate(requests)``.

Re-exports only; engines (vLLM, torch/transformers, httpx) are imported when a sampler is built.
"""

from prmflow.samplers.base import (
    BACKENDS,
    Completion,
    Sampler,
    SamplerConfig,
    SamplerMetrics,
    SamplingRequest,
    SamplingResult,
    derive_seed,
    make_sampler,
)
from prmflow.samplers.hf_backend import HFSampler
from prmflow.samplers.openai_backend import OpenAISampler
from prmflow.samplers.shared import SharedSampler, shared_sampler
from prmflow.samplers.vllm_backend import VLLMSampler

__all__ = [
    "BACKENDS",
    "Completion",
    "HFSampler",
    "OpenAISampler",
    "Sampler",
    "SamplerConfig",
    "SamplerMetrics",
    "SamplingRequest",
    "SamplingResult",
    "SharedSampler",
    "VLLMSampler",
    "derive_seed",
    "make_sampler",
    "shared_sampler",
]
