"""The interface every detector implements, and the adapter for pytorch-ood's detectors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

from torch import Tensor, nn

from inference.data import ImageSet
from inference.evaluation.ood.classifiers import batched


class Detector(ABC):
    """Fit on MNIST training data, then score inputs: higher means more in-distribution.

    Detectors built on a classifier also answer :meth:`predict`, so that calibration
    and risk-coverage can be measured on the same scores.
    """

    #: Short name used in tables and plots.
    name: str = "detector"

    def fit(self, train: ImageSet) -> Detector:
        """Fit whatever the score needs on in-distribution training data (default: nothing)."""
        return self

    @abstractmethod
    def score(self, images: Tensor) -> Tensor:
        """``(N, 784)`` images in [0, 1] -> ``(N,)`` float scores, higher = more in-distribution."""

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(confidence, predicted class)``, both ``(N,)``; only for detectors built on a classifier."""
        raise NotImplementedError(f"{type(self).__name__} is not a classifier")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def pytorch_ood() -> ModuleType:
    """``pytorch_ood.detector``, imported when a detector needs it (it is in the ``evaluation`` extra)."""
    try:
        import pytorch_ood.detector
    except ImportError as err:  # pragma: no cover - the dev install has it
        raise ImportError("this detector comes from pytorch-ood: pip install 'bnn-abstain[evaluation]'") from err
    return pytorch_ood.detector


class FeatureDetector(Detector):
    """A pytorch-ood detector on a classifier's hidden features (``net.features``).

    ``fit`` hands it the training digits' features and labels (``fit_features``); ``score`` is its
    outlier score of the features (``predict_features``) negated, to this package's convention.
    """

    def __init__(self, net: nn.Module, detector: Any, name: str) -> None:
        self.net, self.detector, self.name = net, detector, name

    def fit(self, train: ImageSet) -> FeatureDetector:
        self.detector.fit_features(batched(self.net.features, train.images), train.labels)
        return self

    def score(self, images: Tensor) -> Tensor:
        return batched(lambda x: -self.detector.predict_features(self.net.features(x)).float(), images, batch_size=512)
