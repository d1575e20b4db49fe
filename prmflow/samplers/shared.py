"""One sampler per process and config, shared by every stage that asks the policy for text.

Beam's RunInference (trajectory sampling) and the rollout DoFn both need the same engine; loading it
twice would double the memory and, for vLLM's in-process engine, fight over global state. Calls are
serialised with a lock because Beam may run bundles of different stages on different threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prmflow.samplers.base import Sampler, SamplerConfig, SamplingRequest, SamplingResult, make_sampler

_LOCK = threading.Lock()
_SAMPLERS: dict[SamplerConfig, SharedSampler] = {}


class SharedSampler:
    """A process-wide sampler that stages share; it never closes the engine under them. Backends
    serialise their own calls (the engines are not thread-safe), so no lock is needed here."""

    def __init__(self, config: SamplerConfig) -> None:
        self.config = config
        self.sampler: Sampler = make_sampler(config)

    def generate(self, requests: Sequence[SamplingRequest]) -> list[SamplingResult]:
        return self.sampler.generate(requests)

    def metrics(self) -> dict[str, int]:
        """The shared engine's cumulative counters (all stages together)."""
        return self.sampler.metrics()

    def reset_prefix_cache(self) -> None:
        self.sampler.reset_prefix_cache()

    def close(self) -> None:
        """Closing is the process's job at exit; stages share this engine and must not close it."""


def shared_sampler(config: SamplerConfig) -> SharedSampler:
    with _LOCK:
        sampler = _SAMPLERS.get(config)
        if sampler is None:
            sampler = _SAMPLERS[config] = SharedSampler(config)
        return sampler


def reset_caches() -> None:
    """Empty the prefix cache of every shared engine of this process. ``prmflow run`` calls it before
    a pipeline starts, so a run that reuses a warm in-process engine records the same
    ``cached_prompt_tokens`` as one on a fresh engine, and reruns stay identical. (Engines are not
    shut down: in-process vLLM engines share global parallel state, and shutting one down breaks
    the others.)"""
    with _LOCK:
        samplers = list(_SAMPLERS.values())
    for s in samplers:
        s.reset_prefix_cache()
