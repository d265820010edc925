"""What runs when someone trains or predicts, one sub-package per stage, imports running one way:

``data`` -> ``training`` -> ``posterior`` -> ``calibration`` -> ``predictive`` -> the interfaces (``commands``, ``web``).

The code that measures the library lives in :mod:`inference.evaluation`, which importing
:mod:`inference` does not load.
"""

from inference.calibration import CalibrationConfig, calibrate
from inference.data import CorruptDatasetError, DatasetNotFoundError, ImageSet, split_calibration, to_batch
from inference.posterior import predictive_probs
from inference.predictive import ABSTAIN, DEFAULT_RULE, REASONS, AbstainResult, Mode, Rule, decide, predict_with_abstain
from inference.training import TrainConfig, TrainingDivergedError, train

__all__ = [
    "ABSTAIN",
    "DEFAULT_RULE",
    "REASONS",
    "AbstainResult",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageSet",
    "Mode",
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
