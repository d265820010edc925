"""The Bayesian MLP's own scores, read from one pass of the 100-network predictive."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from bnn import TrainedBNN
from inference.evaluation.ood.detectors.base import Detector
from inference.predictive import AbstainResult, predict_with_abstain

Kind = Literal["max_median", "entropy", "mutual_information", "p_value"]

NAMES = {
    "max_median": "BNN max median",
    "entropy": "BNN -entropy",
    "mutual_information": "BNN -mutual info",
    "p_value": "BNN calibrated p-value",
}


class BayesianDetector(Detector):
    """A score of a trained Bayesian MLP (higher = more in-distribution).

    - ``"max_median"``: the largest median probability across networks (the median rule's score).
    - ``"entropy"``: minus the entropy of the mean prediction (total uncertainty).
    - ``"mutual_information"``: minus the mutual information between label and weights
      (the epistemic part: how much the networks disagree).
    - ``"p_value"``: the calibrated rule's conformal p-value (needs a calibrated model).

    :meth:`score_result` reads the score from a prediction already made, so that one pass of
    the predictive serves every Bayesian score; :meth:`score` makes that prediction itself.
    """

    def __init__(self, trained: TrainedBNN, kind: Kind = "max_median", num_samples: int = 100, seed: int = 0) -> None:
        if kind not in NAMES:
            raise ValueError(f"kind must be one of {sorted(NAMES)}, got {kind!r}")
        self.trained, self.kind, self.num_samples, self.seed = trained, kind, num_samples, seed
        self.name = NAMES[kind]

    def predict_all(self, images: Tensor) -> AbstainResult:
        """The one prediction every Bayesian score reads (calibrated when the score needs it)."""
        mode = "calibrated" if self.kind == "p_value" else "median"
        return predict_with_abstain(self.trained, images, self.num_samples, mode=mode, seed=self.seed)

    def score_result(self, result: AbstainResult) -> Tensor:
        if self.kind == "max_median":
            return result.score
        if self.kind == "entropy":
            return -result.entropy
        if self.kind == "mutual_information":
            return -result.mutual_information
        if result.p_value is None:
            raise ValueError("the p-value score needs a prediction with mode='calibrated'")
        return result.p_value

    def score(self, images: Tensor) -> Tensor:
        return self.score_result(self.predict_all(images))

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(top mean probability, its class)``: the posterior predictive's confidence and forced answer."""
        top = self.predict_all(images).mean_probs.max(-1)
        return top.values, top.indices
