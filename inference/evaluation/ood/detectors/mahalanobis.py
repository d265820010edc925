"""Class-conditional Gaussians with a shared covariance on a classifier's features (Lee et al., 2018)."""

from __future__ import annotations

import torch
from sklearn.covariance import LedoitWolf
from torch import Tensor, nn

from inference.data import ImageSet
from inference.evaluation.ood.classifiers import batched
from inference.evaluation.ood.detectors.base import Detector


class Mahalanobis(Detector):
    """Score: minus the smallest Mahalanobis distance from the features to a class mean.

    The shared covariance is the Ledoit-Wolf estimate of the class-centred features
    (the plain sample covariance of 1024 ReLU features is singular).
    """

    def __init__(self, net: nn.Module, name: str = "Mahalanobis") -> None:
        self.net, self.name = net, name

    def fit(self, train: ImageSet) -> Mahalanobis:
        features = batched(self.net.features, train.images).double()
        classes = train.labels.unique()
        self.means = torch.stack([features[train.labels == c].mean(0) for c in classes])
        centred = features - self.means[torch.searchsorted(classes, train.labels)]
        self.precision = torch.from_numpy(LedoitWolf(assume_centered=True).fit(centred.numpy()).precision_)
        return self

    def score(self, images: Tensor) -> Tensor:
        return batched(self._score, images, batch_size=512)

    def _score(self, images: Tensor) -> Tensor:
        diff = self.net.features(images).double()[:, None, :] - self.means[None]  # (B, C, F)
        distance = ((diff @ self.precision) * diff).sum(-1)
        return -distance.min(-1).values.float()
