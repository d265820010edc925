import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO

from bnn import BayesianMLP, BNNConfig, MeanFieldGuide


def test_initialisation_like_nn_linear_with_small_scales():
    torch.manual_seed(0)
    model = BayesianMLP(BNNConfig(hidden_dim=64, init_scale=1e-3))
    post = MeanFieldGuide(model).posterior()
    bound = 1 / math.sqrt(784)
    assert post["fc1.weight"].loc.abs().max() <= bound
    assert post["fc1.weight"].loc.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert 0.8 * bound < post["fc1.bias"].loc.abs().max() <= bound  # biases too: U(-1/sqrt(in), 1/sqrt(in))
    for normal in post.values():
        assert torch.allclose(normal.scale, torch.tensor(1e-3), rtol=1e-4)


@pytest.mark.parametrize("row_column", [False, True])
def test_vectorised_sampling_has_the_posterior_moments(row_column):
    torch.manual_seed(0)
    model = BayesianMLP(BNNConfig(hidden_dim=3, init_scale=0.5, row_column_scales=row_column))
    guide = MeanFieldGuide(model)
    with torch.no_grad(), pyro.plate("networks", 20_000, dim=-1):
        trace = poutine.trace(guide).get_trace()
    w = trace.nodes["fc2.weight"]["value"]
    assert w.shape == (20_000, 10, 3)
    post = guide.posterior()["fc2.weight"]
    assert torch.allclose(w.mean(0), post.loc, atol=0.02)
    assert torch.allclose(w.std(0), post.scale, rtol=0.03)


def test_elbo_kl_term_is_the_analytic_normal_kl():
    """With no likelihood term (num_data=0 is not allowed, so we drop the obs site), the loss is the closed-form KL."""
    model = BayesianMLP(BNNConfig(hidden_dim=5, prior_scale=2.0, init_scale=0.3))
    guide = MeanFieldGuide(model)

    def prior_only(x):
        model.fc2(torch.relu(model.fc1(x)))

    loss = TraceMeanField_ELBO().differentiable_loss(prior_only, guide, torch.rand(1, 784))
    expected = 0.0
    for normal in guide.posterior().values():
        m, s, p = normal.loc, normal.scale, 2.0
        expected = expected + (torch.log(p / s) + (s**2 + m**2) / (2 * p**2) - 0.5).sum()
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_kl_weight_scales_only_the_kl():
    model = BayesianMLP(BNNConfig(hidden_dim=5, init_scale=0.3))
    guide = MeanFieldGuide(model)

    def prior_only(x):
        model.fc2(torch.relu(model.fc1(x)))

    elbo, x = TraceMeanField_ELBO(), torch.rand(1, 784)
    full = elbo.differentiable_loss(prior_only, guide, x)
    tempered = elbo.differentiable_loss(prior_only, poutine.scale(guide, scale=0.1), x)
    assert torch.allclose(tempered, 0.1 * full, rtol=1e-5)


def test_guide_parameters_are_plain_torch_parameters():
    guide = MeanFieldGuide(BayesianMLP(BNNConfig(hidden_dim=4)))
    names = sorted(n for n, _ in guide.named_parameters())
    assert names == sorted(
        f"{layer}_{site}_{kind}" for layer in ("fc1", "fc2") for site in ("weight", "bias") for kind in ("loc", "rho")
    )


def test_row_column_scales_have_one_factor_per_row_and_per_column():
    model = BayesianMLP(BNNConfig(hidden_dim=4, init_scale=1e-2, row_column_scales=True))
    guide = MeanFieldGuide(model)
    shapes = {n: tuple(p.shape) for n, p in guide.named_parameters() if n.endswith("_rho")}
    assert shapes == {
        "fc1_weight_row_rho": (4,),
        "fc1_weight_column_rho": (784,),
        "fc1_bias_rho": (4,),
        "fc2_weight_row_rho": (10,),
        "fc2_weight_column_rho": (4,),
        "fc2_bias_rho": (10,),
    }
    for normal in guide.posterior().values():  # every weight starts at init_scale, as without the factors
        assert torch.allclose(normal.scale, torch.tensor(1e-2), rtol=1e-4)
