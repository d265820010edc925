"""The variational posterior: a mean-field Normal over every weight and bias."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import Tensor, nn

from bnn.model import BayesianMLP


def inverse_softplus(y: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(float(y)))))


class MeanFieldGuide(PyroModule):
    """``q(w) = prod Normal(loc, softplus(rho))`` over the latent sites of a :class:`BayesianMLP`.

    Means start as ``nn.Linear`` would initialise the weights, standard deviations at
    ``model.config.init_scale``: a small start lets the means fit the data first,
    and the KL term then widens every factor the data does not pin down.

    The parameters are plain ``nn.Parameter`` tensors (``<layer>_<site>_loc`` and
    ``<layer>_<site>_rho``), so the guide trains with any ``torch.optim`` optimiser.
    """

    def __init__(self, model: BayesianMLP) -> None:
        super().__init__()
        rho = inverse_softplus(model.config.init_scale)
        self.site_names: list[str] = []
        for name, layer in model.layers().items():
            for site, loc in zip(("weight", "bias"), layer.init_loc(), strict=True):
                key = f"{name}_{site}"
                setattr(self, f"{key}_loc", nn.Parameter(loc))
                setattr(self, f"{key}_rho", nn.Parameter(torch.full_like(loc, rho)))
                self.site_names.append(f"{name}.{site}")

    def posterior(self) -> dict[str, dist.Normal]:
        """The Normal factor of every latent site, by site name."""
        out = {}
        for site in self.site_names:
            key = site.replace(".", "_")
            loc, rho = getattr(self, f"{key}_loc"), getattr(self, f"{key}_rho")
            out[site] = dist.Normal(loc, nn.functional.softplus(rho))
        return out

    def forward(self, *args: object, **kwargs: object) -> dict[str, Tensor]:
        """Draw every weight and bias; the model's arguments are accepted and ignored."""
        return {site: pyro.sample(site, normal.to_event(normal.loc.dim())) for site, normal in self.posterior().items()}
