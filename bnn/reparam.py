"""Local reparameterisation (Kingma, Salimans & Welling, 2015) as a Pyro messenger.

Under a mean-field Normal posterior the pre-activation ``x @ W.T + b`` of one input
is itself Normal, with mean ``x @ loc.T + b_loc`` and variance
``x**2 @ scale.T**2 + b_scale**2``. Sampling it directly, independently for every
input, gives an unbiased estimate of the same expected log-likelihood as sampling
``W`` once per minibatch, with lower variance and without weight-sized noise.

While :class:`LocalReparameterization` is active, a latent Normal site of the guide
is not drawn at all: its value is a stand-in (the Normal's mean), and the messenger
remembers the Normal, which :func:`bnn.layers.linear` asks for when the model
replays that value. The ELBO must therefore not read latent values directly: an
analytic-KL ELBO (``TraceMeanField_ELBO``, :class:`inference.training.elbo.MeanFieldELBO`)
does not.
"""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from pyro.poutine.messenger import Messenger


def base_normal(fn: Any) -> dist.Normal | None:
    """The Normal under any ``Independent`` wrappers of ``fn``, or ``None``."""
    while isinstance(fn, (dist.Independent, torch.distributions.Independent)):
        fn = fn.base_dist
    return fn if isinstance(fn, torch.distributions.Normal) else None


class LocalReparameterization(Messenger):
    """Make Bayesian layers sample pre-activations instead of weights.

    Use it around an analytic-KL ELBO evaluation::

        with LocalReparameterization():
            loss = TraceMeanField_ELBO().differentiable_loss(model, guide, x, y)

    ``variance_dtype`` (for example ``torch.bfloat16``) is the dtype in which the layers compute the
    pre-activations' variance (see :func:`bnn.layers.linear`); ``None`` keeps the inputs' dtype.
    """

    _active: list[LocalReparameterization] = []

    def __init__(self, variance_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self._variance_dtype = variance_dtype
        self._sources: dict[int, tuple[torch.Tensor, torch.distributions.Normal]] = {}

    def __enter__(self) -> LocalReparameterization:
        LocalReparameterization._active.append(self)
        return super().__enter__()

    def __exit__(self, *args: Any) -> Any:
        LocalReparameterization._active.remove(self)
        self._sources.clear()
        return super().__exit__(*args)

    def _pyro_sample(self, msg: dict[str, Any]) -> None:
        # Only the guide's fresh draws: the model's sites are replayed (done) or observed.
        if msg["done"] or msg["is_observed"] or msg["value"] is not None:
            return
        normal = base_normal(msg["fn"])
        if normal is None:
            return
        # A new tensor object per site (a view), so that its id identifies the site.
        value = normal.loc.detach().view_as(normal.loc)
        msg["value"], msg["done"] = value, True
        # The tensor is kept alive so that its id cannot be reused.
        self._sources[id(value)] = (value, normal)

    @staticmethod
    def source_of(value: torch.Tensor) -> torch.distributions.Normal | None:
        """The Normal that ``value`` stands for, if local reparameterisation is on."""
        if not LocalReparameterization._active:
            return None
        entry = LocalReparameterization._active[-1]._sources.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else None

    @staticmethod
    def variance_dtype() -> torch.dtype | None:
        """The dtype of the variance's product that the innermost active messenger asks for, if any."""
        return LocalReparameterization._active[-1]._variance_dtype if LocalReparameterization._active else None
