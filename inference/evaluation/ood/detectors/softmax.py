"""Max-softmax (Hendrycks & Gimpel, 2017) and its temperature-scaled variant (Guo et al., 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inference.data import ImageSet
from inference.evaluation.ood.classifiers import batched, fit_temperature
from inference.evaluation.ood.detectors.base import Detector


class MaxSoftmax(Detector):
    """Score: the largest softmax probability of a deterministic classifier."""

    def __init__(self, net: nn.Module, name: str = "max-softmax", temperature: float = 1.0) -> None:
        self.net, self.name, self.temperature = net, name, temperature

    def probabilities(self, images: Tensor) -> Tensor:
        return torch.softmax(batched(self.net, images) / self.temperature, -1)

    def score(self, images: Tensor) -> Tensor:
        return self.probabilities(images).max(-1).values

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        top = self.probabilities(images).max(-1)
        return top.values, top.indices


class TemperatureScaled(MaxSoftmax):
    """Max-softmax of ``logits / T``, ``T`` fitted by L-BFGS on the NLL of a held-out split (the ``fit`` data)."""

    def __init__(self, net: nn.Module, name: str = "temperature-scaled") -> None:
        super().__init__(net, name)

    def fit(self, train: ImageSet) -> TemperatureScaled:
        self.temperature = fit_temperature(self.net, train)
        return self
