"""The energy score (Liu et al., 2020) of a classifier's logits, from pytorch-ood."""

from __future__ import annotations

from torch import Tensor, nn

from inference.evaluation.ood.classifiers import batched
from inference.evaluation.ood.detectors.base import Detector, pytorch_ood


class Energy(Detector):
    """Score: minus the free energy, ``T logsumexp(logits / T)`` (the paper's ``T = 1``)."""

    def __init__(self, net: nn.Module, temperature: float = 1.0, name: str = "energy") -> None:
        self.net, self.temperature, self.name = net, temperature, name

    def score(self, images: Tensor) -> Tensor:
        return -pytorch_ood().EnergyBased.score(batched(self.net, images), t=self.temperature)
