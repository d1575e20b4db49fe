"""prmflow's own PRM: ``prmflow train-prm`` (weighted soft-label training) and ``PRMScorer``.

``config`` and ``encoding`` are pure; ``model``, ``train`` and ``scorer`` import torch and transformers,
so import them by module (``from prmflow.prm.scorer import PRMScorer``) where they are needed.
"""

from prmflow.prm.config import PRMScoreConfig, PRMTrainConfig, load_train_config

__all__ = ["PRMScoreConfig", "PRMTrainConfig", "load_train_config"]
