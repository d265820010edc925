"""A class-agnostic Gaussian mixture on a classifier's features (Shao, Song & Ermon)."""

from __future__ import annotations

import torch
from sklearn.mixture import GaussianMixture
from torch import Tensor, nn

from inference.data import ImageSet
from inference.evaluation.ood.classifiers import batched
from inference.evaluation.ood.detectors.base import Detector


class FeatureGMM(Detector):
    """Score: log-likelihood of the classifier's features under a diagonal GMM fitted by EM.

    ``max_fit`` caps the training images whose features EM sees (a random subset), since
    EM's cost is ``N * components * features`` per iteration.
    """

    def __init__(
        self, net: nn.Module, components: int = 20, max_fit: int = 20_000, seed: int = 0, name: str = "GMM on features"
    ) -> None:
        self.net, self.components, self.max_fit, self.seed, self.name = net, components, max_fit, seed, name
        self.gmm = GaussianMixture(components, covariance_type="diag", reg_covar=1e-4, max_iter=200, random_state=seed)

    def fit(self, train: ImageSet) -> FeatureGMM:
        g = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(train), generator=g)[: self.max_fit]
        self.gmm.fit(batched(self.net.features, train.images[idx]).numpy())
        return self

    def score(self, images: Tensor) -> Tensor:
        return torch.from_numpy(self.gmm.score_samples(batched(self.net.features, images).numpy())).float()
