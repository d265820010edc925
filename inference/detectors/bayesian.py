"""The Bayesian MLP's own scores, from the same 100 sampled networks as the abstention rule."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from bnn import TrainedBNN
from inference.detectors.base import Detector
from inference.predictive import predict_with_abstain

Kind = Literal["median", "entropy", "mutual_information"]


class BayesianDetector(Detector):
    """Scores of a trained Bayesian MLP (higher = more in-distribution).

    - ``"median"``: the largest median probability across networks (the abstention rule's score).
    - ``"entropy"``: minus the entropy of the mean prediction (total uncertainty).
    - ``"mutual_information"``: minus the mutual information between label and weights,
      ``H[mean p] - mean H[p]`` (the epistemic part: how much the networks disagree).
    """

    def __init__(self, trained: TrainedBNN, kind: Kind = "median", num_samples: int = 100, seed: int = 0) -> None:
        self.trained, self.kind, self.num_samples, self.seed = trained, kind, num_samples, seed
        self.name = {"median": "BNN max median", "entropy": "BNN -entropy", "mutual_information": "BNN -mutual info"}[kind]

    def _result(self, images: Tensor):
        return predict_with_abstain(self.trained, images, self.num_samples, return_samples=True, seed=self.seed)

    def score(self, images: Tensor) -> Tensor:
        result = self._result(images)
        if self.kind == "median":
            return result.score
        total = _entropy(result.mean_probs)
        if self.kind == "entropy":
            return -total
        return -(total - _entropy(result.samples).mean(0))

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        top = self._result(images).mean_probs.max(-1)
        return top.values, top.indices


def _entropy(probs: Tensor) -> Tensor:
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)
