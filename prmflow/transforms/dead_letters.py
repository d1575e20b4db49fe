"""Dead letters on Beam: the tagged output they travel on, and a counter per stage and reason.
The rows themselves are built by ``prmflow.core.dead_letters``."""

from __future__ import annotations

import apache_beam as beam

from prmflow.core.dead_letters import record_dead_letter as dead_letter

DEAD = "dead_letters"
NAMESPACE = "prmflow"

__all__ = ["DEAD", "NAMESPACE", "count_dead", "dead_letter"]


def count_dead(stage: str, reason: str) -> None:
    beam.metrics.Metrics.counter(NAMESPACE, f"{stage}_dead_{reason}").inc()
