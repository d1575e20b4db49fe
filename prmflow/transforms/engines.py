"""The engine a stage runs on: one per SDK process, or ``sampler.model_copies`` per machine.

By default every SDK process keeps one engine per sampler config (``samplers/shared.py``), shared by
all of its stages (RunInference's sampling, the rollout DoFn, the judge). On a machine that runs
several SDK processes (Dataflow starts one per vCPU; FnApiRunner ``--direct_num_workers``) that is
one model per process, which a GPU may not hold. With ``model_copies: N`` the engines live in Beam's
``MultiProcessShared`` servers instead, N per machine, and process i sends its calls to copy i % N;
requests and results cross the process boundary pickled.
"""

from __future__ import annotations

import os

from apache_beam.utils.multi_process_shared import MultiProcessShared

from prmflow.ids import content_id
from prmflow.samplers.base import SamplerConfig, make_sampler
from prmflow.samplers.shared import shared_sampler


def _tag(config: SamplerConfig, copy: int) -> str:
    return f"prmflow-engine-{content_id(repr(config))}-{copy}"


def engine(config: SamplerConfig):
    """The sampler a stage should call for ``config`` (``generate``, ``reset_prefix_cache``, ``metrics``)."""
    if config.model_copies is None:
        return shared_sampler(config)
    copy = os.getpid() % config.model_copies
    return MultiProcessShared(lambda: make_sampler(config), tag=_tag(config, copy), always_proxy=True).acquire()
