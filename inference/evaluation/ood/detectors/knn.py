"""Deep nearest neighbours (Sun et al., 2022) on a classifier's features, from pytorch-ood."""

from __future__ import annotations

from torch import nn

from inference.evaluation.ood.detectors.base import FeatureDetector, pytorch_ood


class KNN(FeatureDetector):
    """Score: minus the distance from the unit-normalised features to their ``k``-th nearest training feature.

    ``k = 50`` is the paper's choice for CIFAR-10 with its whole training set, kept as given
    (choosing it on an evaluation set is what this benchmark never does).
    """

    def __init__(self, net: nn.Module, k: int = 50, name: str = "KNN") -> None:
        super().__init__(net, pytorch_ood().KNN(None, k=k), name)
