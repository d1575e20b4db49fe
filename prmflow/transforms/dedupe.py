"""One trajectory per ``trajectory_id`` (see ``prmflow.sources.duplicates``)."""

from __future__ import annotations

import apache_beam as beam

from prmflow.sources.duplicates import keep_first_read
from prmflow.transforms.dead_letters import NAMESPACE


def _keep(kv):
    item, dropped = keep_first_read(kv[1])
    if dropped:
        beam.metrics.Metrics.counter(NAMESPACE, "duplicates").inc(dropped)
    return item, dropped


class DedupeTrajectories(beam.PTransform):
    """(problem, trajectory) items -> (the same, one per trajectory_id; tallies
    ``(("duplicates", source), n)`` of the items dropped, for the manifest and ``reconcile``)."""

    def expand(self, items):
        kept = (
            items
            | "KeyById" >> beam.Map(lambda it: (it[1].trajectory_id, it))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirstRead" >> beam.Map(_keep)
        )
        unique = kept | "Items" >> beam.Map(lambda kd: kd[0])
        tallies = (
            kept
            | "Dropped" >> beam.Filter(lambda kd: kd[1] > 0)
            | "KeyBySource" >> beam.Map(lambda kd: (("duplicates", kd[0][0].source), kd[1]))
            | "SumDropped" >> beam.CombinePerKey(sum)
        )
        return unique, tallies
