"""Stage 2, training: SVI on the mean-field ELBO, in the built-in loop or on Lightning, one step shared by both."""

from inference.training.config import TrainConfig
from inference.training.loop import mean_network_accuracy, train
from inference.training.step import (
    DistributedTrainingError,
    ShortRunWarning,
    TrainingDivergedError,
    make_optimizer,
    minibatch_loss,
)

__all__ = [
    "DistributedTrainingError",
    "ShortRunWarning",
    "TrainConfig",
    "TrainingDivergedError",
    "make_optimizer",
    "mean_network_accuracy",
    "minibatch_loss",
    "train",
]
