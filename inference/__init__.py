"""Training, the 100-network predictive with abstention, and evaluation."""

from inference.data import CorruptDatasetError, DatasetNotFoundError, ImageSet
from inference.inputs import to_batch
from inference.predictive import ABSTAIN, AbstainResult, decide, predict_with_abstain, predictive_probs
from inference.training import TrainConfig, TrainingDivergedError, train

__all__ = [
    "ABSTAIN",
    "AbstainResult",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageSet",
    "TrainConfig",
    "TrainingDivergedError",
    "decide",
    "predict_with_abstain",
    "predictive_probs",
    "to_batch",
    "train",
]
