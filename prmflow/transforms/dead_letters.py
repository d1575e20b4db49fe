"""Dead letters on Beam: the tagged output they travel on, and a counter per stage and reason.
The rows themselves are built by ``prmflow.core.dead_letters``."""

from __future__ import annotations

import apache_beam as beam

from prmflow.core.dead_letters import record_dead_letter as dead_letter

DEAD = "dead_letters"
NAMESPACE = "prmflow"

__all__ = ["DEAD", "NAMESPACE", "BundleCounts", "count", "count_dead", "dead_letter"]


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the prmflow counter ``name`` (Beam metrics, reported in the manifest)."""
    beam.metrics.Metrics.counter(NAMESPACE, name).inc(n)


def count_dead(stage: str, reason: str) -> None:
    count(f"{stage}_dead_{reason}")


class BundleCounts:
    """Counter increments summed in a dict and reported with ``flush()``: for a DoFn that handles
    many records per element, where a Beam counter per record costs more than the record's work.
    ``self(name, n)`` has the signature of ``count``."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}

    def __call__(self, name: str, n: int = 1) -> None:
        self.sums[name] = self.sums.get(name, 0) + n

    def flush(self) -> None:
        sums, self.sums = self.sums, {}
        for name, n in sorted(sums.items()):
            count(name, n)
