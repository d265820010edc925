"""A Bayesian MLP in Pyro: model, mean-field guide, checkpoints."""

from bnn.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from bnn.config import BNNConfig
from bnn.guide import MeanFieldGuide
from bnn.layers import BayesianLinear, linear
from bnn.model import BayesianMLP
from bnn.reparam import LocalReparameterization
from bnn.trained import TrainedBNN

__all__ = [
    "BNNConfig",
    "BayesianLinear",
    "BayesianMLP",
    "CheckpointError",
    "LocalReparameterization",
    "MeanFieldGuide",
    "TrainedBNN",
    "linear",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
