"""A trained Bayesian MLP: the model, its guide, and the device they live on."""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import torch

from bnn.config import BNNConfig
from bnn.guide import MeanFieldGuide
from bnn.model import BayesianMLP


@dataclass
class TrainedBNN:
    """The pair that :func:`inference.predict_with_abstain` needs."""

    model: BayesianMLP
    guide: MeanFieldGuide

    @classmethod
    def create(cls, config: BNNConfig | None = None, device: str | torch.device = "cpu", seed: int | None = None) -> TrainedBNN:
        """A fresh model and guide (the guide initialised as described in :class:`MeanFieldGuide`).

        ``seed`` fixes the guide's random initial means (``None``: the global random state).
        """
        if seed is not None:
            pyro.set_rng_seed(seed)
        model = BayesianMLP(config)
        return cls(model, MeanFieldGuide(model)).to(device)

    @property
    def config(self) -> BNNConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.guide.parameters()).device

    def to(self, device: str | torch.device) -> TrainedBNN:
        self.model.to(device)
        self.guide.to(device)
        return self
