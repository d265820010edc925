"""Networks drawn from the fitted guide, and every input's class probabilities under each of them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import pyro
import torch
from pyro import poutine
from torch import Tensor

from bnn import BayesianMLP, MeanFieldGuide
from bnn.layers import shared_noise
from inference.rng import forked_rng

#: Networks sampled from the posterior per input (the reference notebook's 100).
NUM_SAMPLES = 100
#: The seed a prediction draws its networks (and its density's draws) with unless told otherwise; calibration scores
#: the held-out digits with it too, so that by default they and a new input are scored by one function.
SCORING_SEED = 0

#: Hidden activations a chunk of ``method="local"`` holds at once (``num_samples * chunk * hidden_dim`` floats, 16 MB in
#: float32), so that the chunk's elementwise work stays in the last-level cache: the former 2**24 (64 MB) ran at half
#: the speed on a 2-core EPYC with 32 MB of L3 (``docs/design.md``, Speed).
CHUNK_ACTIVATIONS = 2**22

Method = Literal["weights", "local"]


def sample_weights(guide: MeanFieldGuide, num_samples: int) -> dict[str, Tensor]:
    """Draw ``num_samples`` whole networks from the guide in one vectorised call.

    Returns every latent site with a leading dimension ``num_samples``.
    """
    with torch.no_grad(), pyro.plate("networks", num_samples, dim=-1):
        trace = poutine.trace(guide).get_trace()
    return {name: site["value"] for name, site in trace.nodes.items() if site["type"] == "sample"}


def iter_predictive_probs(
    model: BayesianMLP,
    guide: MeanFieldGuide,
    x: Tensor,
    num_samples: int = NUM_SAMPLES,
    method: Method = "local",
    chunk_size: int | None = None,
    seed: int | None = None,
) -> Iterator[Tensor]:
    """Class probabilities of every input under ``num_samples`` posterior networks, chunk by chunk.

    Parameters
    ----------
    x
        ``(N, input_dim)`` floats in [0, 1], on the guide's device.
    method
        ``"weights"`` samples ``num_samples`` whole networks once and evaluates
        every input under all of them (batched matrix products). ``"local"``
        draws each input's first-layer pre-activations from their exact Normal
        under the mean-field posterior (local reparameterisation), then applies
        ``num_samples`` sampled output layers: every input still gets
        ``num_samples`` exact independent draws from its predictive distribution,
        at a fraction of the cost (the 784x1024 product is done once, not S times).
        Either way the draws are made once per call, before the first chunk, and shared by every chunk, so an
        input's answer does not depend on the batch it comes in or its place there; between chunks the caller's grad
        mode and random stream are its own.
    chunk_size
        Inputs evaluated at once; memory is bounded by ``num_samples * chunk_size * hidden_dim``
        floats. ``None`` picks :func:`default_chunk_size`: 1024 for ``"weights"`` (large products run fastest),
        :data:`CHUNK_ACTIVATIONS` hidden activations' worth for ``"local"`` (elementwise work stays in cache).
    seed
        Seeds the sampling (a fixed seed gives the same networks every call).

    Yields
    ------
    Tensor
        ``(num_samples, n, num_classes)`` probabilities of the next ``n <= chunk_size`` inputs.
    """
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if chunk_size is None:
        chunk_size = default_chunk_size(method, num_samples, model.config.hidden_dim)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if method not in ("weights", "local"):
        raise ValueError(f"method must be 'weights' or 'local', got {method!r}")
    # Every draw is made here, before the first chunk (without a seed from, and advancing, the global stream). The
    # chunks draw nothing, and the generator holds no grad mode or random state across its yields: a caller may stop
    # early, interleave two of them, or train between chunks.
    with torch.no_grad(), forked_rng(x.device, seed) if seed is not None else contextlib.nullcontext():
        if method == "weights":
            params: dict[str, Any] = sample_weights(guide, num_samples)
            draws, noise = None, None
        else:
            # Pre-activations of the first layer per input; the small last layer as S sampled matrices.
            first = f"{model.layer_names[0]}."
            posterior = guide.posterior()
            params = {k: v if k.startswith(first) else v.sample((num_samples,)) for k, v in posterior.items()}
            draws = num_samples
            loc = posterior[f"{first}weight"].loc
            noise = shared_noise(None, num_samples, loc.shape[0], loc)
    for start in range(0, x.shape[0], chunk_size):
        with torch.no_grad():
            probs = torch.softmax(model.sampled_logits(x[start : start + chunk_size], params, draws, noise), -1)
        yield probs


def default_chunk_size(method: Method, num_samples: int, hidden_dim: int) -> int:
    """Inputs per chunk: 1024 for ``"weights"`` (large products run fastest), :data:`CHUNK_ACTIVATIONS` hidden
    activations for ``"local"`` (its elementwise work stays in cache; 40 inputs for 100 networks of 1024 units)."""
    return 1024 if method == "weights" else max(1, CHUNK_ACTIVATIONS // (num_samples * hidden_dim))


def predictive_probs(
    model: BayesianMLP, guide: MeanFieldGuide, x: Tensor, num_samples: int = NUM_SAMPLES, **kwargs: Any
) -> Tensor:
    """All of :func:`iter_predictive_probs` at once: ``(num_samples, N, num_classes)``."""
    chunks = list(iter_predictive_probs(model, guide, x, num_samples, **kwargs))
    if not chunks:
        return x.new_empty(num_samples, 0, model.config.num_classes)
    return torch.cat(chunks, dim=1)
