"""A VAE's ELBO as an estimate of log p(x) (the generative baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from inference.data import ImageSet
from inference.detectors.base import Detector
from inference.vae import VAE, train_vae


class VAEElbo(Detector):
    """Score: the (importance-weighted) ELBO of a VAE trained on the ``fit`` data, in nats."""

    def __init__(
        self, epochs: int = 10, num_particles: int = 8, seed: int = 0, name: str = "VAE ELBO", progress: bool = False
    ) -> None:
        self.epochs, self.num_particles, self.seed, self.name, self.progress = epochs, num_particles, seed, name, progress
        self.vae: VAE | None = None

    def fit(self, train: ImageSet) -> VAEElbo:
        self.vae = train_vae(train, self.epochs, seed=self.seed, progress=self.progress)
        return self

    def score(self, images: Tensor) -> Tensor:
        if self.vae is None:
            raise RuntimeError("call fit() first")
        torch.manual_seed(self.seed)
        return torch.cat([self.vae.elbo(images[i : i + 2048], self.num_particles) for i in range(0, len(images), 2048)])
