"""The variational posterior: a mean-field Normal over every weight and bias."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import Tensor, nn

from bnn.layers import RowColumnNormal
from bnn.model import BayesianMLP


def inverse_softplus(y: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(float(y)))))


class MeanFieldGuide(PyroModule):
    """``q(w) = prod Normal(loc, softplus(rho))`` over the latent sites of a :class:`BayesianMLP`.

    Means start as ``nn.Linear`` would initialise the weights, standard deviations at
    ``model.config.init_scale``: a small start lets the means fit the data first,
    and the KL term then widens every factor the data does not pin down.

    The parameters are plain ``nn.Parameter`` tensors (``<layer>_<site>_loc`` and
    ``<layer>_<site>_rho``), so the guide trains with any ``torch.optim`` optimiser. With
    ``model.config.row_column_scales`` a weight matrix has ``<layer>_weight_row_rho`` ``(out,)`` and
    ``<layer>_weight_column_rho`` ``(in,)`` instead of a ``rho`` per weight (:class:`~bnn.layers.RowColumnNormal`),
    each starting at the square root of ``init_scale``.
    """

    def __init__(self, model: BayesianMLP) -> None:
        super().__init__()
        self.row_column_scales = model.config.row_column_scales
        rho = inverse_softplus(model.config.init_scale)
        factor_rho = inverse_softplus(model.config.init_scale**0.5)
        self.site_names: list[str] = []
        for name, layer in model.layers().items():
            for site, loc in zip(("weight", "bias"), layer.init_loc(), strict=True):
                key = f"{name}_{site}"
                setattr(self, f"{key}_loc", nn.Parameter(loc))
                if site == "weight" and self.row_column_scales:
                    setattr(self, f"{key}_row_rho", nn.Parameter(torch.full((loc.shape[0],), factor_rho)))
                    setattr(self, f"{key}_column_rho", nn.Parameter(torch.full((loc.shape[1],), factor_rho)))
                else:
                    setattr(self, f"{key}_rho", nn.Parameter(torch.full_like(loc, rho)))
                self.site_names.append(f"{name}.{site}")

    def locs(self) -> dict[str, Tensor]:
        """The posterior means of every latent site, by site name (no scales computed)."""
        return {site: getattr(self, f"{site.replace('.', '_')}_loc") for site in self.site_names}

    def posterior(self) -> dict[str, dist.Normal]:
        """The Normal factor of every latent site, by site name."""
        softplus = nn.functional.softplus
        out = {}
        for site in self.site_names:
            key = site.replace(".", "_")
            loc = getattr(self, f"{key}_loc")
            if site.endswith(".weight") and self.row_column_scales:
                row, column = getattr(self, f"{key}_row_rho"), getattr(self, f"{key}_column_rho")
                out[site] = RowColumnNormal(loc, softplus(row), softplus(column))
            else:
                out[site] = dist.Normal(loc, softplus(getattr(self, f"{key}_rho")))
        return out

    def forward(self, *args: object, **kwargs: object) -> dict[str, Tensor]:
        """Draw every weight and bias; the model's arguments are accepted and ignored."""
        return {site: pyro.sample(site, normal.to_event(normal.loc.dim())) for site, normal in self.posterior().items()}
