"""Outcome-only step labelers: Monte-Carlo (Math-Shepherd), binary search (OmegaPRM), relative
(GenPRM / StepWiser) and consistency weights (MetaStone-S1). Pure Python: no engine imports.

The public surface is what stages and users call; types and helpers stay in their modules
(``prmflow.labelers.process.mc`` etc.)."""

from prmflow.labelers.process.binary_search import BinarySearch, BinarySearchConfig, run_rounds
from prmflow.labelers.process.consistency import (
    ConsistencyConfig,
    agreement,
    balanced_class_weights,
    consistency_weights,
)
from prmflow.labelers.process.mc import MCConfig, hard_label, mc_labels, mc_value
from prmflow.labelers.process.relative import RelativeConfig, relative_labels

__all__ = [
    "BinarySearch",
    "BinarySearchConfig",
    "ConsistencyConfig",
    "MCConfig",
    "RelativeConfig",
    "agreement",
    "balanced_class_weights",
    "consistency_weights",
    "hard_label",
    "mc_labels",
    "mc_value",
    "relative_labels",
    "run_rounds",
]
