"""prmflow's own PRM: ``prmflow train-prm`` (weighted soft-label training on ``transformers.Trainer``),
``PRMScorer``, and ``prmflow eval-prm`` (any PRM on ProcessBench and best-of-N candidate sets).

``config``, ``encoding``, ``metrics`` and ``bon`` are pure; ``model``, ``train``, ``scorer``,
``baselines`` (the likelihood scorer) and ``eval``'s adapters import torch and transformers, so import
them by module (``from prmflow.prm.scorer import PRMScorer``) where they are needed.
"""

from prmflow.prm.config import PRMScoreConfig, PRMTrainConfig, load_train_config

__all__ = ["PRMScoreConfig", "PRMTrainConfig", "load_train_config"]
