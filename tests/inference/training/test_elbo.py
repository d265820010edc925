"""MeanFieldELBO computes exactly Pyro's TraceMeanField_ELBO, with fewer passes."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import Normal, kl_divergence

from bnn import BayesianMLP, BNNConfig, LocalReparameterization, MeanFieldGuide
from bnn.layers import RowColumnNormal
from inference.training.elbo import MeanFieldELBO, normal_kl_sum, row_column_kl_sum


@pytest.mark.parametrize("prior_loc, prior_scale", [(0.0, 1.0), (0.3, 2.5)])
def test_kl_of_a_scalar_prior_matches_torch(prior_loc, prior_scale):
    q_loc, q_scale = torch.randn(30, 7, dtype=torch.float64), torch.rand(30, 7, dtype=torch.float64) + 0.05
    p = Normal(torch.tensor(prior_loc, dtype=torch.float64), torch.tensor(prior_scale, dtype=torch.float64)).expand([30, 7])
    expected = kl_divergence(Normal(q_loc, q_scale), p).sum()
    assert torch.allclose(normal_kl_sum(q_loc, q_scale, p.loc, p.scale), expected)


def test_kl_of_an_elementwise_prior_matches_torch():
    q_loc, q_scale = torch.randn(5, 4, dtype=torch.float64), torch.rand(5, 4, dtype=torch.float64) + 0.05
    p_loc, p_scale = torch.randn(4, dtype=torch.float64), torch.rand(5, 1, dtype=torch.float64) + 0.5
    expected = kl_divergence(Normal(q_loc, q_scale), Normal(p_loc.expand(5, 4), p_scale.expand(5, 4))).sum()
    assert torch.allclose(normal_kl_sum(q_loc, q_scale, p_loc.expand(5, 4), p_scale.expand(5, 4)), expected)
    dense_loc, dense_scale = p_loc.expand(5, 4).contiguous(), p_scale.expand(5, 4).contiguous()  # no stride is 0
    assert torch.allclose(normal_kl_sum(q_loc, q_scale, dense_loc, dense_scale), expected)


@pytest.mark.parametrize("prior_loc, prior_scale", [(0.0, 1.0), (0.3, torch.rand(6, 1, dtype=torch.float64) + 0.5)])
def test_kl_of_row_column_scales_matches_torch(prior_loc, prior_scale):
    f64 = {"dtype": torch.float64}
    q = RowColumnNormal(torch.randn(6, 9, **f64), torch.rand(6, **f64) + 0.05, torch.rand(9, **f64) + 0.05)
    p_loc = torch.tensor(prior_loc, dtype=torch.float64).expand(6, 9)
    p_scale = torch.as_tensor(prior_scale, dtype=torch.float64).expand(6, 9)
    expected = kl_divergence(Normal(q.loc, q.scale), Normal(p_loc, p_scale)).sum()
    assert torch.allclose(row_column_kl_sum(q, p_loc, p_scale), expected)


def test_kl_is_zero_when_the_guide_is_the_prior():
    assert normal_kl_sum(torch.zeros(100), torch.ones(100), torch.zeros(()), torch.ones(())).abs() < 1e-6


@pytest.mark.parametrize("kl_weight", [1.0, 0.1])
@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("row_column", [False, True])
def test_loss_and_gradients_equal_pyros(kl_weight, local, row_column):
    config = BNNConfig(hidden_dim=8, num_data=50, init_scale=0.1, prior_scale=1.5, row_column_scales=row_column)
    model = BayesianMLP(config).double()
    guide = MeanFieldGuide(model).double()
    scaled = poutine.scale(guide, scale=kl_weight)
    x, y = torch.rand(10, 784, dtype=torch.float64), torch.randint(0, 10, (10,))

    def loss_and_grads(elbo):
        pyro.set_rng_seed(3)
        guide.zero_grad()
        with LocalReparameterization() if local else poutine.block(hide=[]):
            loss = elbo.differentiable_loss(model, scaled, x, y)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in guide.parameters()]

    ours, ours_grads = loss_and_grads(MeanFieldELBO())
    pyros, pyros_grads = loss_and_grads(TraceMeanField_ELBO())
    assert torch.allclose(ours, pyros)
    for a, b in zip(ours_grads, pyros_grads, strict=True):
        assert torch.allclose(a, b)


def test_a_guide_site_the_model_does_not_have_is_refused():
    def model():
        pyro.sample("w", dist.Normal(0.0, 1.0))

    def guide():
        pyro.sample("w", dist.Normal(pyro.param("m", torch.tensor(0.5)), 1.0))
        pyro.sample("aux", dist.Normal(0.0, 1.0))

    with pytest.raises(NotImplementedError, match="MeanFieldELBO does not support auxiliary guide sites"):
        MeanFieldELBO().differentiable_loss(model, guide)


def test_non_normal_sites_fall_back_to_torchs_kl():
    def model():
        pyro.sample("rate", dist.Gamma(2.0, 1.0))

    def guide():
        pyro.sample("rate", dist.Gamma(pyro.param("a", torch.tensor(3.0)), 2.0))

    expected = kl_divergence(dist.Gamma(3.0, 2.0), dist.Gamma(2.0, 1.0))
    assert torch.allclose(MeanFieldELBO().differentiable_loss(model, guide), expected)


def test_local_reparameterisation_draws_no_weights():
    model = BayesianMLP(BNNConfig(hidden_dim=8, num_data=10))
    guide = MeanFieldGuide(model)
    with LocalReparameterization():
        trace = poutine.trace(guide).get_trace()
    posterior = guide.posterior()
    for name in ("fc1.weight", "fc1.bias", "fc2.weight"):
        assert torch.equal(trace.nodes[name]["value"], posterior[name].loc)
