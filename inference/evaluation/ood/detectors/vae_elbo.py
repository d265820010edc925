"""A VAE's ELBO as an estimate of log p(x) (the generative baseline)."""

from __future__ import annotations

from torch import Tensor

from bnn import VAE, VAEConfig
from inference.calibration import train_vae, vae_elbo
from inference.data import ImageSet
from inference.evaluation.ood.detectors.base import Detector


class VAEElbo(Detector):
    """Score: the (importance-weighted) ELBO of a VAE trained on the ``fit`` data, in nats."""

    def __init__(
        self,
        epochs: int = 10,
        num_particles: int = 8,
        seed: int = 0,
        name: str = "VAE ELBO",
        progress: bool = False,
        config: VAEConfig | None = None,
    ) -> None:
        self.epochs, self.num_particles, self.seed, self.name, self.progress = epochs, num_particles, seed, name, progress
        self.config = config
        self.vae: VAE | None = None

    def fit(self, train: ImageSet) -> VAEElbo:
        self.vae = train_vae(train, self.epochs, seed=self.seed, progress=self.progress, config=self.config)
        return self

    def score(self, images: Tensor) -> Tensor:
        if self.vae is None:
            raise RuntimeError("call fit() first")
        return vae_elbo(self.vae, images, self.num_particles, seed=self.seed)
