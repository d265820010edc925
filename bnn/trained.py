"""A Bayesian MLP ready to predict: the model, its guide, and (optionally) its calibration."""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import torch

from bnn.calibration import Calibration
from bnn.config import BNNConfig
from bnn.guide import MeanFieldGuide
from bnn.model import BayesianMLP


@dataclass
class TrainedBNN:
    """What :func:`inference.predict_with_abstain` needs.

    ``calibration`` holds held-out digits' scores for the calibrated rule; without it,
    only the reference median rule is available.
    """

    model: BayesianMLP
    guide: MeanFieldGuide
    calibration: Calibration | None = None

    @classmethod
    def untrained(
        cls, config: BNNConfig | None = None, device: str | torch.device = "cpu", seed: int | None = None
    ) -> TrainedBNN:
        """A fresh model and guide, not trained yet (the guide initialised as in :class:`MeanFieldGuide`).

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

    @torch.no_grad()
    def mean_logits(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """``(N, input_dim)`` -> ``(N, num_classes)`` logits of the network whose weights are the posterior means (a cheap
        summary for training's progress figures and outlier mining, not the posterior predictive)."""
        params = {k: v.unsqueeze(0) for k, v in self.guide.locs().items()}
        starts = range(0, len(x), batch_size)
        logits = [self.model.sampled_logits(x[i : i + batch_size].to(self.device), params)[0] for i in starts]
        return torch.cat(logits) if logits else x.new_zeros(0, self.config.num_classes, device=self.device)

    def to(self, device: str | torch.device) -> TrainedBNN:
        self.model.to(device)
        self.guide.to(device)
        if self.calibration is not None:
            self.calibration.to(device)
        return self
