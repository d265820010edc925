"""Out-of-distribution detectors behind one interface (:class:`Detector`), one file each.

Score convention, for every detector: **higher means more in-distribution**.
"""

from inference.ood.detectors.base import Detector
from inference.ood.detectors.bayesian import BayesianDetector
from inference.ood.detectors.gmm import FeatureGMM
from inference.ood.detectors.mahalanobis import Mahalanobis
from inference.ood.detectors.softmax import MaxSoftmax, TemperatureScaled
from inference.ood.detectors.vae_elbo import VAEElbo

__all__ = ["BayesianDetector", "Detector", "FeatureGMM", "Mahalanobis", "MaxSoftmax", "TemperatureScaled", "VAEElbo"]
