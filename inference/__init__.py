"""What runs when someone trains or predicts: data, inputs, the ELBO, SVI training, calibration and the predictive.

The code that measures the library lives in the sub-packages :mod:`inference.evaluation`
and :mod:`inference.ood`, which importing :mod:`inference` does not load.
"""

from inference.calibration import CalibrationConfig, calibrate
from inference.data import CorruptDatasetError, DatasetNotFoundError, ImageSet, split_calibration
from inference.inputs import to_batch
from inference.predictive import (
    ABSTAIN,
    DEFAULT_RULE,
    REASONS,
    AbstainResult,
    Rule,
    decide,
    predict_with_abstain,
    predictive_probs,
)
from inference.training import TrainConfig, TrainingDivergedError, train

__all__ = [
    "ABSTAIN",
    "DEFAULT_RULE",
    "REASONS",
    "AbstainResult",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageSet",
    "Rule",
    "CalibrationConfig",
    "TrainConfig",
    "TrainingDivergedError",
    "calibrate",
    "decide",
    "predict_with_abstain",
    "predictive_probs",
    "split_calibration",
    "to_batch",
    "train",
]
