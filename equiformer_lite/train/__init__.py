"""Training: losses, metrics, the robust training loop, configs and whole runs."""

from .config import DataConfig, RunConfig, TrainingConfig, load_config
from .losses import LOSSES, PotentialLoss, log_cosh
from .metrics import MetricAccumulator
from .run import (BUNDLED_DATA, committee_members, evaluate_model, load_splits, pooled_split_indices, resolve_data_paths,
                  train_committee, train_from_config)
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "BUNDLED_DATA",
    "DataConfig",
    "LOSSES",
    "MetricAccumulator",
    "PotentialLoss",
    "RunConfig",
    "Trainer",
    "TrainingConfig",
    "TrainingDiverged",
    "committee_members",
    "evaluate_model",
    "load_config",
    "load_splits",
    "log_cosh",
    "pooled_split_indices",
    "resolve_data_paths",
    "train_committee",
    "train_from_config",
]
