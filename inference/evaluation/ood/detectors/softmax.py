"""Max-softmax (Hendrycks & Gimpel, 2017) and its temperature-scaled variant (Guo et al., 2017), scored by pytorch-ood."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inference.data import ImageSet
from inference.evaluation.ood.classifiers import batched, fit_temperature
from inference.evaluation.ood.detectors.base import Detector, pytorch_ood


class MaxSoftmax(Detector):
    """Score: the largest softmax probability of ``logits / temperature`` of a deterministic classifier."""

    def __init__(self, net: nn.Module, name: str = "max-softmax", temperature: float = 1.0) -> None:
        self.net, self.name, self.temperature = net, name, temperature

    def score(self, images: Tensor) -> Tensor:
        return -pytorch_ood().MaxSoftmax.score(batched(self.net, images), t=self.temperature)

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        top = torch.softmax(batched(self.net, images) / self.temperature, -1).max(-1)
        return top.values, top.indices


class TemperatureScaled(MaxSoftmax):
    """Max-softmax of ``logits / T``, ``T`` fitted on the NLL of a held-out split (the ``fit`` data).

    The fit is this project's (L-BFGS on ``log T`` with a line search, to the optimum):
    pytorch-ood's ``TemperatureScaling.fit`` takes 50 fixed L-BFGS steps of 0.01 and stops short of it.
    """

    def __init__(self, net: nn.Module, name: str = "temperature-scaled") -> None:
        super().__init__(net, name)

    def fit(self, train: ImageSet) -> TemperatureScaled:
        self.temperature = fit_temperature(self.net, train)
        return self
