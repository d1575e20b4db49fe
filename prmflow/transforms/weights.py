"""MetaStone-S1 consistency weights over step rows, in any run (see prmflow/weights.py)."""

from __future__ import annotations

import apache_beam as beam

from prmflow.core.weights import WeightsConfig, kept_counts, row_weight


def _sum_pairs(pairs) -> tuple[int, int]:
    n_pos = n_neg = 0
    for p, q in pairs:
        n_pos += p
        n_neg += q
    return n_pos, n_neg


class ConsistencyWeights(beam.PTransform):
    """Step rows -> the same rows with ``weight``. Hard and soft weights are a map; balanced weights
    first count kept labels over the whole corpus (a global combine, as MetaStone-S1 balances over the
    batch), then weigh each row (positive 1.5·N_neg/N, negative N_pos/N)."""

    def __init__(self, config: WeightsConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, rows):
        if self.config.consistency.mode != "balanced":
            return rows | "Weigh" >> beam.Map(lambda r, c=self.config: {**r, "weight": row_weight(r, c)})
        counts = (
            rows
            | "KeptLabels" >> beam.Map(kept_counts, self.config)
            | "CountKept" >> beam.CombineGlobally(_sum_pairs)
        )
        return rows | "Weigh" >> beam.Map(
            lambda r, n, c=self.config: {**r, "weight": row_weight(r, c, n)}, beam.pvalue.AsSingleton(counts)
        )
