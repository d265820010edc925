"""The Bayesian MLP: priors on every weight and bias, a Categorical likelihood."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import Tensor
from torch.distributions import Normal

from bnn.config import BNNConfig
from bnn.deskew import deskew
from bnn.layers import BayesianLinear, linear


def uniform_cross_entropy(logits: Tensor) -> Tensor:
    """``(..., C)`` logits -> ``(...)`` cross-entropy of the uniform distribution to ``softmax(logits)``, in nats.

    ``-(1/C) sum_c log softmax(logits)_c = logsumexp(logits) - mean(logits)``; its minimum, ``log C``,
    is reached by a uniform prediction.
    """
    return torch.logsumexp(logits, -1) - logits.mean(-1)


def soft_cross_entropy(logits: Tensor, targets: Tensor | None = None) -> Tensor:
    """``(..., C)`` logits and ``(..., C)`` target distributions -> ``(...)`` cross-entropy ``-sum_c t_c log softmax_c``
    in nats; ``targets`` None is the uniform distribution (:func:`uniform_cross_entropy`)."""
    if targets is None:
        return uniform_cross_entropy(logits)
    return -(targets * torch.log_softmax(logits, -1)).sum(-1)


class BayesianMLP(PyroModule):
    """A Pyro model ``input_dim -> hidden_dim (ReLU) -> num_classes``.

    Every weight and bias has a ``Normal(0, prior_scale)`` prior. Calling the module
    with a minibatch draws one network and scores the labels under a Categorical
    likelihood inside a ``pyro.plate`` of size ``config.num_data``, so that the
    minibatch log-likelihood is scaled up to the whole training set.
    """

    #: Layer names in order; ``f"{name}.weight"`` and ``f"{name}.bias"`` are the latent sites.
    layer_names = ("fc1", "fc2")

    def __init__(self, config: BNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or BNNConfig()
        c = self.config
        self.fc1 = BayesianLinear(c.input_dim, c.hidden_dim, c.prior_scale)
        self.fc2 = BayesianLinear(c.hidden_dim, c.num_classes, c.prior_scale)

    def layers(self) -> dict[str, BayesianLinear]:
        return {name: getattr(self, name) for name in self.layer_names}

    def prepare(self, x: Tensor) -> Tensor:
        """``(B, input_dim)`` inputs as the first layer reads them: deskewed when ``config.deskew``."""
        return deskew(x) if self.config.deskew else x

    def forward(
        self,
        x: Tensor,
        y: Tensor | None = None,
        contrast: Tensor | None = None,
        contrast_weight: float = 0.0,
        contrast_targets: Tensor | None = None,
    ) -> Tensor:
        """Draw a network, return its logits and observe ``y`` if given.

        ``x``: ``(B, input_dim)`` floats; ``y``: ``(B,)`` class indices, or ``(B, num_classes)`` label distributions
        (soft labels, scored by their expected log-likelihood ``sum_c y_c log p(c | x, w)``). Returns
        ``(B, num_classes)``.

        With ``contrast`` ``(B', input_dim)``, inputs unlike any digit (a noise-contrastive prior,
        Hafner et al.), the same network is also asked to be uncertain about them: a factor
        ``-contrast_weight * CE(t, p(. | contrast, w))`` per input, in a plate scaled like the data's, where the
        target ``t`` is the uniform distribution, or the rows of ``contrast_targets`` ``(B', num_classes)``.
        """
        if contrast is None:
            logits = self.fc2(torch.relu(self.fc1(self.prepare(x))))
        else:  # one draw of the network for both batches
            both = self.fc2(torch.relu(self.fc1(self.prepare(torch.cat([x, contrast])))))
            logits, contrast_logits = both[: x.shape[0]], both[x.shape[0] :]
            with pyro.plate("contrast", size=self.config.num_data, subsample=torch.arange(contrast.shape[0], device=x.device)):
                pyro.factor("contrast_prior", -contrast_weight * soft_cross_entropy(contrast_logits, contrast_targets))
        subsample = torch.arange(x.shape[0], device=x.device)
        with pyro.plate("data", size=self.config.num_data, subsample=subsample):
            if y is not None and y.dim() == 2:  # label distributions: the expected Categorical log-likelihood
                pyro.factor("obs", -soft_cross_entropy(logits, y))
            else:
                pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
        return logits

    def sampled_logits(
        self, x: Tensor, params: dict[str, Tensor | Normal], num_samples: int | None = None, noise: Tensor | None = None
    ) -> Tensor:
        """Logits of networks whose weights are given rather than drawn by Pyro.

        Parameters
        ----------
        x
            ``(B, input_dim)``.
        params
            For every latent site name (``"fc1.weight"``, ...) either ``S`` sampled
            values with a leading dimension ``S``, or the posterior Normal over it
            (then the pre-activations are drawn per input: local reparameterisation).
        num_samples
            With Normal ``params``: how many draws per input.
        noise
            With Normal ``params``: the first layer's standard-normal noise ``(num_samples, hidden_dim)``, shared by every
            input (:func:`bnn.layers.linear`); drawn here when None.

        Returns
        -------
        Tensor
            ``(S, B, num_classes)``.
        """
        hidden = linear(self.prepare(x), params["fc1.weight"], params["fc1.bias"], num_samples, noise=noise).relu_()
        return linear(hidden, params["fc2.weight"], params["fc2.bias"])
