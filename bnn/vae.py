"""A variational autoencoder in Pyro whose ELBO estimates log p(x), or log p(x | y) given a class: an input's density."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor, nn

from bnn.config import check_fields, option
from bnn.deskew import check_deskewable, deskew
from bnn.layers import shared_noise


def scoring_softplus(x: Tensor) -> Tensor:
    """``log(1 + e^x)`` without autograd, as ``max(x, 0) + log(1 + e^-|x|)``: within 1e-6 of ``torch.nn.functional.softplus``
    (``1 + u`` drops a ``u`` under float32's resolution, an error below 6e-8), in the ``exp`` and ``log`` kernels every
    CPU build vectorises. This torch build's CPU ``softplus`` and ``log1p`` took 2.6x longer over the density's 64M
    activations on the project's 2-core AVX-512 machine (``docs/design.md``, Speed)."""
    return x.clamp_min(0).add_(x.abs().neg_().exp_().add_(1).log_())


class Softplus(nn.Softplus):
    """``nn.Softplus`` that scores with :func:`scoring_softplus` where no gradient is asked for; training (autograd on)
    runs torch's own kernel and its backward, unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return super().forward(x)
        return scoring_softplus(x)


@dataclass(frozen=True)
class VAEConfig:
    """Widths of :class:`VAE`: ``input_dim -> hidden_dim (softplus) -> latent_dim`` and back; with ``num_classes``,
    the encoder and the decoder also read the class (one-hot), and the ELBO estimates ``log p(x | y)``; with
    ``deskew``, it models the images as the classifier reads them (:func:`bnn.deskew.deskew`)."""

    input_dim: int = option(784, "positive_int", "input pixels")
    hidden_dim: int = option(400, "positive_int", "hidden units of the encoder and the decoder")
    latent_dim: int = option(20, "positive_int", "latent dimensions")
    num_classes: int = option(0, "nonnegative_int", "classes the VAE is conditioned on (0: unconditional)")
    deskew: bool = option(False, "bool", "model the deskewed images")

    def __post_init__(self) -> None:
        check_fields(self)
        check_deskewable(self.input_dim, self.deskew)

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class VAE(nn.Module):
    """MLP VAE: ``z ~ N(0, I)``, pixels ~ Bernoulli(decoder(z)) as in Pyro's VAE example (a conditional VAE,
    ``decoder(z, y)`` and ``q(z | x, y)``, when ``config.num_classes``).

    ``model(x, y)`` and ``guide(x, y)`` take ``(B, input_dim)`` images in [0, 1] (and ``(B,)`` classes when
    conditional) and train on Pyro's ELBOs (with :class:`pyro.infer.SVI`, or ``Trace_ELBO().differentiable_loss`` and a
    torch optimiser, as the calibration does); :meth:`elbo` scores images without Pyro's bookkeeping.
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or VAEConfig()
        k = c.num_classes
        self.encoder = nn.Sequential(nn.Linear(c.input_dim + k, c.hidden_dim), Softplus())
        self.encoder_loc = nn.Linear(c.hidden_dim, c.latent_dim)
        self.encoder_scale = nn.Linear(c.hidden_dim, c.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(c.latent_dim + k, c.hidden_dim), Softplus(), nn.Linear(c.hidden_dim, c.input_dim))

    def prepare(self, x: Tensor) -> Tensor:
        """``(B, input_dim)`` images as the VAE models them: deskewed when ``config.deskew``."""
        return deskew(x) if self.config.deskew else x

    def _with_class(self, inputs: Tensor, y: Tensor | None) -> Tensor:
        """``inputs`` ``(..., d)`` with the one-hot class appended, when the VAE is conditional."""
        if not self.config.num_classes:
            return inputs
        if y is None:
            raise ValueError("this VAE is conditioned on the class: pass y")
        onehot = nn.functional.one_hot(y, self.config.num_classes).to(inputs.dtype)
        return torch.cat([inputs, onehot.expand(*inputs.shape[:-1], -1)], -1)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(B, input_dim)`` (and ``(B,)`` classes) -> the Normal posterior's ``loc`` and ``scale``, each ``(B, latent_dim)``."""
        return self._latent(self.encoder(self._with_class(x, y)))

    def _latent(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder's hidden units ``(..., hidden_dim)`` -> ``q(z | x)``'s ``loc`` and ``scale``."""
        return self.encoder_loc(hidden), nn.functional.softplus(self.encoder_scale(hidden)) + 1e-4

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``(..., B, latent_dim)`` -> the pixels' Bernoulli logits ``(..., B, input_dim)``."""
        return self.decoder(self._with_class(z, y))

    def model(self, x: Tensor, y: Tensor | None = None, prepared: bool = False) -> None:
        """``prepared``: ``x`` is already as the VAE models it (:meth:`prepare`), so that a training step that
        passes the same batch to the guide and the model prepares it once."""
        pyro.module("vae", self)  # registers the networks' parameters with Pyro
        x = x if prepared else self.prepare(x)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.config.latent_dim), 1.0).to_event(1))
            # Grey pixels are allowed as Bernoulli "observations", as in Pyro's example.
            pyro.sample("x", dist.Bernoulli(logits=self.decode(z, y), validate_args=False).to_event(1), obs=x)

    def guide(self, x: Tensor, y: Tensor | None = None, prepared: bool = False) -> None:
        pyro.module("vae", self)
        loc, scale = self.encode(x if prepared else self.prepare(x), y)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    @torch.no_grad()
    def elbo(self, x: Tensor, num_particles: int = 1, y: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        """Per-image ELBO ``(B,)`` in nats (of ``log p(x | y)`` when conditional); with ``num_particles > 1`` the
        importance-weighted bound.

        All particles are drawn at once: ``log p(x | z) + log p(z) - log q(z | x)`` for
        ``num_particles`` draws of ``z ~ q(z | x)``, combined by log-mean-exp. Every image's draws use the same
        standard-normal ``noise`` ``(num_particles, latent_dim)`` (drawn here when None; ``z = loc + scale * noise``),
        so that an image's score does not depend on the batch it comes in or its place there.
        """
        x = self.prepare(x)
        loc, scale = self.encode(x, y)
        noise = shared_noise(noise, num_particles, loc.shape[-1], loc)
        log_weights = self._log_weight(x, loc, scale, loc + scale * noise.unsqueeze(-2), y)
        return torch.logsumexp(log_weights, 0) - math.log(num_particles)

    def _log_weight(self, x: Tensor, loc: Tensor, scale: Tensor, z: Tensor, y: Tensor | None) -> Tensor:
        """``log p(x | z, y) + log p(z) - log q(z | x, y)`` at the draws ``z`` ``(..., latent_dim)``; ``x``, ``loc`` and
        ``scale`` broadcast against them."""
        log_prior = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_q = dist.Normal(loc, scale).log_prob(z).sum(-1)
        # log Bernoulli(x | sigmoid(logits)) summed over the pixels, grey ones included: x * logits - softplus(logits).
        logits = self.decode(z, y)
        return (logits * x).sum(-1) - scoring_softplus(logits).sum(-1) + log_prior - log_q

    @torch.no_grad()
    def elbo_per_class(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        """One-particle ELBO of each image under every class, ``(B, num_classes)``: column ``k`` is
        ``elbo(x, 1, y=k, noise)``, up to float rounding, and every class and image uses the same ``noise``
        ``(1, latent_dim)``.

        The encoder's first layer reads ``[x, onehot(k)]``, so its product splits into the image's part, computed once
        per image, and the class's column of the weights: a tenth of the encoder's image products of ten
        :meth:`elbo` calls.
        """
        k = self.config.num_classes
        if not k:
            raise ValueError("the ELBO per class needs a VAE conditioned on the class")
        x = self.prepare(x)
        first = self.encoder[0]
        image_part = x @ first.weight[:, :-k].T + first.bias  # (B, hidden)
        loc, scale = self._latent(self.encoder[1](image_part.unsqueeze(-2) + first.weight[:, -k:].T))  # (B, k, latent)
        z = loc + scale * shared_noise(noise, 1, loc.shape[-1], loc)
        return self._log_weight(x.unsqueeze(-2), loc, scale, z, torch.arange(k, device=x.device))
