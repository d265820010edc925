"""A variational autoencoder in Pyro whose ELBO serves as log p(x) for out-of-distribution detection."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from torch import Tensor, nn
from tqdm.auto import tqdm

from inference.data import ImageSet


class VAE(nn.Module):
    """MLP VAE: ``z ~ N(0, I)`` (``latent_dim``), pixels ~ Bernoulli(decoder(z)) as in Pyro's VAE example.

    ``model(x)`` and ``guide(x)`` take ``(B, 784)`` images in [0, 1].
    """

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden_dim), nn.Softplus())
        self.encoder_loc = nn.Linear(hidden_dim, latent_dim)
        self.encoder_scale = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.Softplus(), nn.Linear(hidden_dim, 784))

    def model(self, x: Tensor) -> None:
        pyro.module("vae", self)  # registers the networks' parameters with Pyro
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))
            # Grey pixels are allowed as Bernoulli "observations", as in Pyro's example.
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z), validate_args=False).to_event(1), obs=x)

    def guide(self, x: Tensor) -> None:
        pyro.module("vae", self)
        hidden = self.encoder(x)
        with pyro.plate("data", x.shape[0]):
            scale = nn.functional.softplus(self.encoder_scale(hidden)) + 1e-4
            pyro.sample("z", dist.Normal(self.encoder_loc(hidden), scale).to_event(1))

    @torch.no_grad()
    def elbo(self, x: Tensor, num_particles: int = 1) -> Tensor:
        """Per-image ELBO ``(B,)`` in nats; with ``num_particles > 1`` the importance-weighted bound."""
        weights = []
        for _ in range(num_particles):
            guide_trace = poutine.trace(self.guide).get_trace(x)
            model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(x)
            model_trace.compute_log_prob()
            guide_trace.compute_log_prob()
            log_w = sum(site["log_prob"] for site in model_trace.nodes.values() if site["type"] == "sample")
            log_w = log_w - guide_trace.nodes["z"]["log_prob"]
            weights.append(log_w)
        stacked = torch.stack(weights)
        return torch.logsumexp(stacked, 0) - torch.log(torch.tensor(float(num_particles)))


def train_vae(
    data: ImageSet, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = True
) -> VAE:
    """Fit a :class:`VAE` by SVI on ``Trace_ELBO`` with Adam."""
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    vae = VAE()
    optimizer = pyro.optim.Adam({"lr": lr})
    svi = SVI(vae.model, vae.guide, optimizer, Trace_ELBO())
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for idx in tqdm(order.split(batch_size), desc=f"VAE epoch {epoch + 1}", disable=not progress, leave=False):
            svi.step(data.images[idx])
    return vae.eval()
