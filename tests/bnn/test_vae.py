import math

import pytest
import torch
import torch.nn.functional as F

from bnn.vae import VAE, Softplus, VAEConfig, scoring_softplus


def test_scoring_softplus_is_torch_s_softplus_to_within_float_rounding():
    x = torch.cat([torch.linspace(-40, 40, 100_001), torch.tensor([-1e4, -88.0, 0.0, 88.0, 1e4])])
    kept = x.clone()
    expected = F.softplus(x.double())
    got = scoring_softplus(x)
    assert torch.equal(x, kept)  # the input is not written over
    assert (got.double() - expected).abs().max() < 1e-6 * expected.clamp_min(1.0).max()
    assert ((got.double() - expected).abs() / expected.clamp_min(1.0)).max() < 1e-6
    assert torch.isfinite(got).all() and (got >= 0).all()


def test_softplus_module_trains_with_torch_s_kernel_and_scores_with_the_fast_one():
    x = torch.randn(1000) * 10
    ours, torch_s = Softplus(), torch.nn.Softplus()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(a), torch_s(b)
    assert torch.equal(ya, yb)  # bit for bit where autograd is on: training is unchanged
    ya.sum().backward()
    yb.sum().backward()
    assert torch.equal(a.grad, b.grad)
    with torch.no_grad():
        assert torch.allclose(ours(x), torch_s(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("num_classes", [0, 10])
def test_one_particle_elbo_is_the_analytic_bound_at_its_draw(num_classes):
    """log p(x | z) + log p(z) - log q(z | x) at the draw of z, the Bernoulli over grey pixels, in float64."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(hidden_dim=32, latent_dim=4, num_classes=num_classes)).eval()
    x = torch.rand(6, 784)
    y = torch.arange(6) if num_classes else None
    torch.manual_seed(1)
    got = vae.elbo(x, 1, y)
    with torch.no_grad():
        loc, scale = vae.encode(x, y)
        torch.manual_seed(1)
        z = loc + scale * torch.randn(1, 1, loc.shape[-1])  # one draw of the noise, shared by every image
        logits = vae.decode(z, y)[0].double()
        log_lik = (x.double() * F.logsigmoid(logits) + (1 - x.double()) * F.logsigmoid(-logits)).sum(-1)
        z, loc, scale = z[0].double(), loc.double(), scale.double()
        log_prior = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_q = (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert got.shape == (6,)
    assert torch.allclose(got.double(), log_lik + log_prior - log_q, atol=1e-3, rtol=0)


def test_the_model_s_prior_on_the_latent_is_a_standard_normal():
    """Training (SVI on the model and guide) must use the prior the scoring ELBO assumes."""
    from pyro import poutine

    vae = VAE(VAEConfig(hidden_dim=8, latent_dim=3))
    prior = poutine.trace(vae.model).get_trace(torch.rand(5, 784)).nodes["z"]["fn"]
    assert prior.event_shape == (3,) and prior.batch_shape == (5,)
    assert torch.equal(prior.base_dist.loc, torch.zeros(5, 3)) and torch.equal(prior.base_dist.scale, torch.ones(5, 3))


@pytest.mark.parametrize("deskew", [False, True])
def test_elbo_per_class_is_the_one_particle_elbo_under_each_class(deskew):
    """Column k is elbo(x, 1, y=k) at the same draw (of the deskewed image too): the encoder's image product, shared
    by the classes, changes only the rounding; an unconditional VAE has no classes to score under."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(hidden_dim=32, latent_dim=4, num_classes=10, deskew=deskew)).eval()
    x = torch.rand(6, 784)
    noise = torch.randn(1, 4)
    got = vae.elbo_per_class(x, noise)
    expected = torch.stack([vae.elbo(x, 1, torch.full((6,), k), noise) for k in range(10)], -1)
    assert got.shape == (6, 10)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="conditioned on the class"):
        VAE(VAEConfig(hidden_dim=8, latent_dim=2)).elbo_per_class(x)
