"""Outcome-only step labelers: Monte-Carlo (Math-Shepherd), binary search (OmegaPRM), relative
(GenPRM / StepWiser) and consistency weights (MetaStone-S1). Pure Python: no engine imports."""

from prmflow.labelers.process.binary_search import (
    AfterError,
    BinarySearch,
    BinarySearchConfig,
    BinarySearchResult,
    CorrectOutcome,
    Estimator,
    run_rounds,
)
from prmflow.labelers.process.consistency import (
    ConsistencyConfig,
    ConsistencyMode,
    TiePolicy,
    agreement,
    balanced_class_weights,
    batch_consistency_weights,
    class_counts,
    consistency_weights,
    pseudo_labels,
)
from prmflow.labelers.process.mc import MCConfig, MCLabels, first_error, hard_label, mc_labels, mc_value
from prmflow.labelers.process.relative import (
    RelativeConfig,
    RelativeMode,
    ZeroPrevious,
    relative_labels,
    relative_progress,
)

__all__ = [
    "AfterError",
    "BinarySearch",
    "BinarySearchConfig",
    "BinarySearchResult",
    "ConsistencyConfig",
    "ConsistencyMode",
    "CorrectOutcome",
    "Estimator",
    "MCConfig",
    "MCLabels",
    "RelativeConfig",
    "RelativeMode",
    "TiePolicy",
    "ZeroPrevious",
    "agreement",
    "balanced_class_weights",
    "batch_consistency_weights",
    "class_counts",
    "consistency_weights",
    "first_error",
    "hard_label",
    "mc_labels",
    "mc_value",
    "pseudo_labels",
    "relative_labels",
    "relative_progress",
    "run_rounds",
]
