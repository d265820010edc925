"""The density of an input: train a :class:`bnn.VAE` by SVI and score images by its ELBO."""

from __future__ import annotations

from collections.abc import Callable

import pyro
import torch
from pyro.infer import Trace_ELBO
from torch import Tensor
from tqdm.auto import tqdm

from bnn import VAE, VAEConfig
from bnn.layers import shared_noise
from inference.data import ImageSet
from inference.rng import forked_rng
from inference.training.augment import random_wider_pen


def train_vae(
    data: ImageSet,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    config: VAEConfig | None = None,
    wide_pen: float = 0.0,
) -> VAE:
    """Fit a :class:`VAE` to ``data`` by stochastic VI on ``Trace_ELBO`` with Adam (conditioned on ``data.labels``
    when ``config.num_classes``); returns it in eval mode on ``data``'s device. A share ``wide_pen`` of each batch's
    images is drawn with a pen one pixel wider (:func:`inference.training.augment.wider_pen`).

    The ELBO's ``differentiable_loss`` and one fused ``torch.optim.Adam`` over the VAE's parameters, as the BNN's
    training does: the updates of ``SVI`` with ``pyro.optim.Adam`` up to float rounding (the fused kernel orders its
    arithmetic differently), 8% faster per step, since Pyro's wrapper keeps one optimiser per parameter.
    """
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    vae = VAE(config).to(data.images.device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr, fused=True)
    loss_fn = Trace_ELBO().differentiable_loss
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for idx in tqdm(order.split(batch_size), desc=f"VAE epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            images = vae.prepare(random_wider_pen(data.images[idx], wide_pen))  # once for the guide and the model
            labels = data.labels[idx].to(data.images.device) if vae.config.num_classes else None
            loss = loss_fn(vae.model, vae.guide, images, labels, prepared=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    pyro.clear_param_store()  # the parameters live on in the module
    return vae.eval()


def vae_elbo(
    vae: VAE,
    images: Tensor,
    num_particles: int = 8,
    seed: int | None = 0,
    chunk_size: int = 256,
    classes: Tensor | None = None,
) -> Tensor:
    """``(N,)`` importance-weighted ELBO of each image in nats, chunk by chunk; ``seed`` fixes the draws of ``z``,
    which every image and chunk share (:meth:`bnn.VAE.elbo`): an image's score does not depend on its batch.

    A conditional VAE scores each image under its ``classes`` ``(N,)`` (the class the rule would answer).
    ``chunk_size`` images at a time keep the 8 particles' logits (6 MB for 256) in cache: 4,096 at a time ran 1.6x
    slower, with the same scores to the bit.
    """
    if vae.config.num_classes and classes is None:
        raise ValueError("this VAE is conditioned on the class: pass the classes to score the images under")
    classes = classes.to(images.device) if vae.config.num_classes and classes is not None else None

    def score(rows: slice, noise: Tensor) -> Tensor:
        return vae.elbo(images[rows], num_particles, None if classes is None else classes[rows], noise)

    return _in_chunks(vae, images.shape[0], num_particles, seed, chunk_size, score)


def class_doubt(vae: VAE, images: Tensor, classes: Tensor, seed: int | None = 0, chunk_size: int = 256) -> Tensor:
    """``(N,)``: ``-log p(classes | x)`` in nats, the conditional VAE read as a generative classifier.

    With a uniform prior over the digits, ``log p(y | x) = ELBO(x | y) - logsumexp_y' ELBO(x | y')``, each ELBO from
    one particle, the same draw of ``z``'s noise for every class and image (``seed``; :meth:`bnn.VAE.elbo_per_class`).
    A digit is explained far better by its own class than by any other (near 0); an input that is no digit is
    explained about as badly by several (large). ``classes`` ``(N,)`` are the classes the rule would answer, so the
    score is one function of the input.
    """
    if not vae.config.num_classes:
        raise ValueError("the class doubt needs a VAE conditioned on the class (CalibrationConfig.class_density)")
    classes = classes.to(images.device)
    elbos = _in_chunks(vae, images.shape[0], 1, seed, chunk_size, lambda rows, noise: vae.elbo_per_class(images[rows], noise))
    return elbos.logsumexp(-1) - elbos.gather(-1, classes.view(-1, 1)).squeeze(-1)


def _in_chunks(
    vae: VAE, n: int, num_draws: int, seed: int | None, chunk_size: int, score: Callable[[slice, Tensor], Tensor]
) -> Tensor:
    """``score(rows, noise)`` over ``n`` images, ``chunk_size`` rows at a time, concatenated; every chunk gets the same
    ``num_draws`` standard-normal draws of ``z``'s noise, from ``seed`` on a fork of the random state, so that an
    image's score does not depend on its batch or its place there (an empty batch is scored once, for its shape)."""
    with forked_rng(vae.encoder_loc.weight.device, seed):
        noise = shared_noise(None, num_draws, vae.config.latent_dim, vae.encoder_loc.weight)
        return torch.cat([score(slice(i, i + chunk_size), noise) for i in range(0, max(n, 1), chunk_size)])


def density_scores(
    vae: VAE, images: Tensor, classes: Tensor, num_particles: int, seed: int | None, with_class_doubt: bool
) -> dict[str, Tensor]:
    """The gate's scores from the density model, each ``(N,)`` on the CPU, under ``classes`` (the answered ones):
    ``"density"`` (:func:`vae_elbo`) and, ``with_class_doubt``, ``"class_doubt"`` (:func:`class_doubt`). The held-out
    digits and every new input are scored by this one function."""
    scores = {"density": vae_elbo(vae, images, num_particles, seed, classes=classes).cpu()}
    if with_class_doubt:
        scores["class_doubt"] = class_doubt(vae, images, classes, seed).cpu()
    return scores
