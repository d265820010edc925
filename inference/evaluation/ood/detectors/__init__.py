"""Out-of-distribution detectors behind one interface (:class:`Detector`), one file each.

max-softmax, energy, ODIN, Mahalanobis, KNN and ViM are pytorch-ood's, behind this interface; the
Bayesian scores, the feature GMM and the VAE are this project's.

Score convention, for every detector: **higher means more in-distribution**.
"""

from inference.evaluation.ood.detectors.base import Detector, FeatureDetector
from inference.evaluation.ood.detectors.bayesian import BayesianDetector
from inference.evaluation.ood.detectors.energy import Energy
from inference.evaluation.ood.detectors.gmm import FeatureGMM
from inference.evaluation.ood.detectors.knn import KNN
from inference.evaluation.ood.detectors.mahalanobis import Mahalanobis
from inference.evaluation.ood.detectors.odin import ODIN
from inference.evaluation.ood.detectors.softmax import MaxSoftmax, TemperatureScaled
from inference.evaluation.ood.detectors.vae_elbo import VAEElbo
from inference.evaluation.ood.detectors.vim import ViM

__all__ = [
    "KNN",
    "ODIN",
    "BayesianDetector",
    "Detector",
    "Energy",
    "FeatureDetector",
    "FeatureGMM",
    "Mahalanobis",
    "MaxSoftmax",
    "TemperatureScaled",
    "VAEElbo",
    "ViM",
]
