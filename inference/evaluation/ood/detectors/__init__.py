"""Out-of-distribution detectors behind one interface (:class:`Detector`), one file each.

Score convention, for every detector: **higher means more in-distribution**.
"""

from inference.evaluation.ood.detectors.base import Detector
from inference.evaluation.ood.detectors.bayesian import BayesianDetector
from inference.evaluation.ood.detectors.gmm import FeatureGMM
from inference.evaluation.ood.detectors.mahalanobis import Mahalanobis
from inference.evaluation.ood.detectors.softmax import MaxSoftmax, TemperatureScaled
from inference.evaluation.ood.detectors.vae_elbo import VAEElbo

__all__ = ["BayesianDetector", "Detector", "FeatureGMM", "Mahalanobis", "MaxSoftmax", "TemperatureScaled", "VAEElbo"]
