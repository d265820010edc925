"""Class-conditional Gaussians with a shared covariance on a classifier's features (Lee et al., 2018), from pytorch-ood."""

from __future__ import annotations

from torch import nn

from inference.evaluation.ood.detectors.base import FeatureDetector, pytorch_ood


class Mahalanobis(FeatureDetector):
    """Score: minus half the smallest squared Mahalanobis distance from the features to a class mean.

    pytorch-ood's estimate: class means and the shared scatter matrix of the class-centred
    training features, with a 1e-6 ridge (the 1024 ReLU features have dead units).
    """

    def __init__(self, net: nn.Module, name: str = "Mahalanobis") -> None:
        super().__init__(net, pytorch_ood().Mahalanobis(None), name)
