"""A Bayesian linear layer and the affine map it shares with the predictive."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroSample
from torch import Tensor
from torch.distributions import Normal

from bnn.reparam import LocalReparameterization


def shared_noise(noise: Tensor | None, num_draws: int, width: int, like: Tensor) -> Tensor:
    """Standard-normal draws ``(num_draws, width)`` that every input of a batch shares: ``noise`` checked, or drawn
    (in ``like``'s dtype and device) when None."""
    if noise is None:
        return torch.randn(num_draws, width, dtype=like.dtype, device=like.device)
    if noise.shape != (num_draws, width):
        raise ValueError(f"noise must be {(num_draws, width)}, got {tuple(noise.shape)}")
    return noise


class RowColumnNormal(dist.Normal):
    """Independent Normals over an ``(out, in)`` matrix whose standard deviations are ``row_scale[i] * column_scale[j]``.

    The diagonal case of the matrix-variate Normal (Louizos & Welling, 2016). It is a
    :class:`~pyro.distributions.Normal` in every respect (``scale`` is the full outer product), and
    :func:`linear` uses the factors, so that ``x**2 @ scale.T**2`` becomes ``(x**2 @ column_scale**2) *
    row_scale**2``: a matrix-vector product in place of a matrix product.
    """

    def __init__(self, loc: Tensor, row_scale: Tensor, column_scale: Tensor, validate_args: bool | None = None) -> None:
        if row_scale.dim() != 1 or column_scale.dim() != 1 or loc.shape != (len(row_scale), len(column_scale)):
            raise ValueError(
                f"loc {tuple(loc.shape)} needs a row scale per row and a column scale per column, "
                f"got {tuple(row_scale.shape)} and {tuple(column_scale.shape)}"
            )
        self.row_scale, self.column_scale = row_scale, column_scale
        super().__init__(loc, row_scale.unsqueeze(-1) * column_scale, validate_args=validate_args)

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance: object = None) -> dist.Normal:
        """A plain :class:`~pyro.distributions.Normal` of the same weights, expanded (as a ``pyro.plate`` of
        sampled networks does); the factors matter only to :func:`linear`."""
        return dist.Normal(self.loc, self.scale).expand(batch_shape)


Weight = Tensor | Normal


def linear(
    x: Tensor,
    weight: Weight,
    bias: Weight,
    num_samples: int | None = None,
    variance_dtype: torch.dtype | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Affine map ``x @ weight.T + bias`` for fixed, batched or Normal weights.

    Parameters
    ----------
    x
        Inputs, shape ``(..., B, in)``.
    weight, bias
        Either tensors of shape ``(out, in)`` and ``(out,)``; or ``S`` sampled
        networks, shapes ``(S, out, in)`` and ``(S, out)``, evaluated with one
        batched matrix product (output ``(S, B, out)``); or factorised Normals over
        those shapes, in which case the output is a draw of the pre-activation
        (local reparameterisation), independent for every input. A :class:`RowColumnNormal`
        weight's variance takes a matrix-vector product, not a matrix product.
    num_samples
        With Normal weights only: draw this many pre-activations per input and put
        them in a new leading dimension. The ``S`` draws of one input are independent
        and exact; to save random numbers, draw ``s`` uses the same standard-normal
        noise for every input (inputs are then correlated with each other, as they are
        when whole sampled networks are shared, which no per-input decision sees).
    noise
        With ``num_samples``: that standard-normal noise, ``(num_samples, out)``, drawn here when None. Passing the
        same noise for every chunk of a batch makes an input's draws independent of the batch it comes in.

    Returns
    -------
    Tensor
        Shape ``(..., B, out)``, or ``(num_samples, ..., B, out)``.
    """
    if isinstance(weight, Normal):
        bias_loc, bias_var = (bias.loc, bias.scale.square()) if isinstance(bias, Normal) else (bias, 0.0)
        mean = torch.nn.functional.linear(x, weight.loc, bias_loc)
        if isinstance(weight, RowColumnNormal):
            var = (x.square() @ weight.column_scale.square()).unsqueeze(-1) * weight.row_scale.square()
        else:
            dtype = variance_dtype or x.dtype  # .to() of a tensor already in a dtype returns it as is
            var = torch.nn.functional.linear(x.square().to(dtype), weight.scale.square().to(dtype)).to(x.dtype)
        std = (var + bias_var).sqrt_()
        if num_samples is None:
            return torch.addcmul(mean, std, torch.randn_like(mean))
        noise = shared_noise(noise, num_samples, mean.shape[-1], mean)
        return torch.addcmul(mean, std, noise.view(num_samples, *[1] * (mean.dim() - 1), mean.shape[-1]))
    if num_samples is not None or variance_dtype is not None or noise is not None:
        raise ValueError("num_samples, variance_dtype and noise are only meaningful for Normal (locally reparameterised) weights")
    if isinstance(bias, Normal):
        raise TypeError("a sampled weight needs a sampled bias, not a Normal")
    if weight.dim() == 2:
        return torch.nn.functional.linear(x, weight, bias)
    # S networks at once: (S, B, in) @ (S, in, out) + (S, 1, out).
    return torch.baddbmm(bias.unsqueeze(-2), x.expand(weight.shape[0], *x.shape[-2:]), weight.transpose(-1, -2))


class BayesianLinear(PyroModule):
    """``nn.Linear`` with a Normal(0, prior_scale) prior on every weight and bias.

    Inside a Pyro model, reading ``self.weight`` or ``self.bias`` draws them from the
    prior (or replays the guide's draw), as with any :class:`~pyro.nn.PyroSample`.
    """

    def __init__(self, in_features: int, out_features: int, prior_scale: float) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # A buffer, so that the prior moves with the module to another device.
        self.register_buffer("prior_scale", torch.tensor(float(prior_scale)))
        self.weight = PyroSample(
            lambda self: dist.Normal(0.0, self.prior_scale).expand([self.out_features, self.in_features]).to_event(2)
        )
        self.bias = PyroSample(lambda self: dist.Normal(0.0, self.prior_scale).expand([self.out_features]).to_event(1))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, in_features)`` -> ``(B, out_features)``."""
        weight, bias = self.weight, self.bias
        weight_source = LocalReparameterization.source_of(weight)
        bias = LocalReparameterization.source_of(bias) or bias
        if weight_source is None:
            return linear(x, weight, bias)
        return linear(x, weight_source, bias, variance_dtype=LocalReparameterization.variance_dtype())

    def init_loc(self) -> tuple[Tensor, Tensor]:
        """Means for a guide, drawn as ``nn.Linear`` initialises its weights and biases."""
        bound = 1.0 / math.sqrt(self.in_features)
        weight = torch.empty(self.out_features, self.in_features)
        torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        return weight, torch.empty(self.out_features).uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, prior_scale={self.prior_scale.item()}"
