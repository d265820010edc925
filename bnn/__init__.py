"""A Bayesian MLP in Pyro and what persists with it: model, mean-field guide, the calibration's VAE, checkpoints."""

from bnn.calibration import Calibration, CalibrationError
from bnn.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, load_model, save_checkpoint
from bnn.config import BNNConfig
from bnn.guide import MeanFieldGuide
from bnn.layers import BayesianLinear, linear
from bnn.model import BayesianMLP
from bnn.reparam import LocalReparameterization
from bnn.trained import TrainedBNN
from bnn.vae import VAE, VAEConfig

__all__ = [
    "DEFAULT_CHECKPOINT",
    "VAE",
    "BNNConfig",
    "BayesianLinear",
    "BayesianMLP",
    "Calibration",
    "CalibrationError",
    "CheckpointError",
    "LocalReparameterization",
    "MeanFieldGuide",
    "TrainedBNN",
    "VAEConfig",
    "linear",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
