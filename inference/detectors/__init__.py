"""Out-of-distribution detectors behind one interface (:class:`Detector`), one file each.

Score convention, for every detector: **higher means more in-distribution**.
"""

from inference.detectors.base import Detector
from inference.detectors.bayesian import BayesianDetector
from inference.detectors.gmm import FeatureGMM
from inference.detectors.mahalanobis import Mahalanobis
from inference.detectors.softmax import MaxSoftmax, TemperatureScaled
from inference.detectors.vae_elbo import VAEElbo

__all__ = ["BayesianDetector", "Detector", "FeatureGMM", "Mahalanobis", "MaxSoftmax", "TemperatureScaled", "VAEElbo"]
