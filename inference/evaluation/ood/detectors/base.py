"""The interface every detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor

from inference.data import ImageSet


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
