import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from bnn import BayesianMLP, BNNConfig, MeanFieldGuide, linear
from bnn.layers import RowColumnNormal


def test_forward_shapes_and_prior_sites():
    model = BayesianMLP(BNNConfig(hidden_dim=32, prior_scale=0.5, num_data=1000))
    x, y = torch.rand(7, 784), torch.randint(0, 10, (7,))
    trace = poutine.trace(model).get_trace(x, y)
    assert trace.nodes["_RETURN"]["value"].shape == (7, 10)
    shapes = {"fc1.weight": (32, 784), "fc1.bias": (32,), "fc2.weight": (10, 32), "fc2.bias": (10,)}
    for name, shape in shapes.items():
        site = trace.nodes[name]
        assert site["value"].shape == shape
        base = site["fn"].base_dist
        assert isinstance(base, dist.Normal)
        assert torch.all(base.loc == 0) and torch.allclose(base.scale, torch.tensor(0.5))
        # log-density of a Normal(0, 0.5) prior, checked by hand
        v = site["value"]
        expected = (-0.5 * (v / 0.5) ** 2 - torch.log(torch.tensor(0.5)) - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum()
        assert torch.allclose(site["fn"].log_prob(v), expected, rtol=1e-5)


def test_likelihood_plate_scales_minibatch_to_dataset_size():
    model = BayesianMLP(BNNConfig(hidden_dim=8, num_data=1000))
    x, y = torch.rand(10, 784), torch.randint(0, 10, (10,))
    trace = poutine.trace(model).get_trace(x, y)
    obs = trace.nodes["obs"]
    assert obs["scale"] == pytest.approx(100.0)
    trace.compute_log_prob()
    logits = trace.nodes["_RETURN"]["value"]
    expected = 100.0 * torch.distributions.Categorical(logits=logits).log_prob(y).sum()
    assert torch.allclose(obs["log_prob_sum"], expected)


def test_batched_networks_match_one_at_a_time():
    torch.manual_seed(1)
    model = BayesianMLP(BNNConfig(hidden_dim=12))
    w = {
        "fc1.weight": torch.randn(5, 12, 784),
        "fc1.bias": torch.randn(5, 12),
        "fc2.weight": torch.randn(5, 10, 12),
        "fc2.bias": torch.randn(5, 10),
    }
    x = torch.rand(3, 784)
    batched = model.sampled_logits(x, w)
    for s in range(5):
        h = torch.relu(x @ w["fc1.weight"][s].T + w["fc1.bias"][s])
        assert torch.allclose(batched[s], h @ w["fc2.weight"][s].T + w["fc2.bias"][s], atol=1e-4)


def test_local_linear_matches_analytic_moments():
    torch.manual_seed(0)
    x = torch.rand(3, 5)
    weight = dist.Normal(torch.randn(4, 5), torch.rand(4, 5))
    bias = dist.Normal(torch.randn(4), torch.rand(4))
    out = linear(x, weight, bias, num_samples=200_000)
    assert out.shape == (200_000, 3, 4)
    mean = x @ weight.loc.T + bias.loc
    var = x.square() @ weight.scale.square().T + bias.scale.square()
    assert torch.allclose(out.mean(0), mean, atol=0.02)
    assert torch.allclose(out.var(0), var, rtol=0.02, atol=0.01)


@pytest.mark.parametrize("num_samples", [None, 3])
def test_row_column_weights_draw_what_their_full_normal_draws(num_samples):
    """The matrix-vector shortcut gives the pre-activations (and gradients) of the same Normal with its scale written out."""
    torch.manual_seed(0)
    x, loc = torch.rand(6, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    row, column = (torch.rand(4, dtype=torch.float64) + 0.1).requires_grad_(), torch.rand(5, dtype=torch.float64) + 0.1
    bias = dist.Normal(torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64))
    outs, grads = [], []
    for weight in (RowColumnNormal(loc, row, column), dist.Normal(loc, row[:, None] * column)):
        torch.manual_seed(1)
        out = linear(x, weight, bias, num_samples=num_samples)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), row)[0])
    assert outs[0].shape == ((6, 4) if num_samples is None else (3, 6, 4))
    assert torch.allclose(outs[0], outs[1])
    assert torch.allclose(grads[0], grads[1])


def test_a_row_column_normal_is_the_outer_product_of_its_factors():
    row, column = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0, 3.0])
    normal = RowColumnNormal(torch.zeros(2, 3), row, column)
    assert torch.equal(normal.scale, torch.tensor([[0.5, 1.0, 3.0], [1.0, 2.0, 6.0]]))
    assert normal.sample((7,)).shape == (7, 2, 3)
    with pytest.raises(ValueError, match=r"loc \(2, 3\) needs a row scale per row .* got \(3,\) and \(2,\)"):
        RowColumnNormal(torch.zeros(2, 3), column, row)


def test_a_bf16_variance_rounds_the_noise_scale_only():
    torch.manual_seed(0)
    x = torch.rand(64, 784)
    loc, scale = torch.randn(32, 784) * 0.05, (torch.rand(32, 784) * 0.5).requires_grad_()
    grads = {}
    for dtype in (None, torch.bfloat16):
        torch.manual_seed(1)
        out = linear(x, dist.Normal(loc, scale), torch.zeros(32), num_samples=4, variance_dtype=dtype)
        assert out.dtype == torch.float32
        grads[dtype] = torch.autograd.grad(out.square().sum(), scale)[0]
        torch.manual_seed(1)  # the same noise: the draws differ only through the variance's rounding
        noise = torch.randn(4, 1, 32)
        std_back = (out - x @ loc.T) / noise
        var = x.square() @ scale.detach().square().T
        assert torch.allclose(std_back.square(), var.expand_as(std_back), rtol=1e-4 if dtype is None else 1e-2)
        exact = torch.allclose(std_back.square(), var.expand_as(std_back), rtol=1e-5)
        assert exact == (dtype is None)  # bf16 rounds the variance; float32 keeps it
    assert torch.allclose(grads[torch.bfloat16], grads[None], rtol=2e-2, atol=1e-3 * grads[None].abs().max())


def test_shared_noise_is_drawn_in_the_inputs_dtype():
    from bnn.layers import shared_noise

    for dtype in (torch.float32, torch.float64):
        assert shared_noise(None, 3, 4, torch.zeros(2, dtype=dtype)).dtype == dtype


def test_normal_weights_take_leading_batch_dimensions():
    """Inputs ``(..., B, in)`` -> draws ``(S, ..., B, out)``: each leading slice as if it came alone, with the same noise."""
    torch.manual_seed(0)
    weight, bias = dist.Normal(torch.randn(4, 3), torch.rand(4, 3)), dist.Normal(torch.randn(4), torch.rand(4))
    x, noise = torch.rand(2, 5, 3), torch.randn(6, 4)
    out = linear(x, weight, bias, num_samples=6, noise=noise)
    assert out.shape == (6, 2, 5, 4)
    for i in range(2):
        assert torch.allclose(out[:, i], linear(x[i], weight, bias, num_samples=6, noise=noise))


def test_linear_rejects_inconsistent_arguments():
    with pytest.raises(ValueError, match="num_samples"):
        linear(torch.rand(2, 3), torch.rand(4, 3), torch.rand(4), num_samples=3)
    with pytest.raises(ValueError, match="variance_dtype"):
        linear(torch.rand(2, 3), torch.rand(4, 3), torch.rand(4), variance_dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="sampled bias"):
        linear(torch.rand(2, 3), torch.rand(4, 3), dist.Normal(torch.zeros(4), 1.0))
    normal = dist.Normal(torch.zeros(4, 3), 1.0)
    with pytest.raises(ValueError, match=r"noise must be \(5, 4\), got \(5, 3\)"):
        linear(torch.rand(2, 3), normal, torch.rand(4), num_samples=5, noise=torch.randn(5, 3))


def test_local_reparameterisation_estimates_the_same_elbo():
    """Weight sampling and local reparameterisation are unbiased for the same loss."""
    from pyro.infer import TraceMeanField_ELBO

    from bnn import LocalReparameterization

    torch.manual_seed(0)
    model = BayesianMLP(BNNConfig(hidden_dim=6, num_data=20, init_scale=0.3))
    guide = MeanFieldGuide(model)
    x, y = torch.rand(20, 784) * 0.2, torch.randint(0, 10, (20,))
    elbo = TraceMeanField_ELBO()
    with torch.no_grad():
        plain = torch.stack([elbo.differentiable_loss(model, guide, x, y) for _ in range(1000)])
        local = []
        for _ in range(1000):
            with LocalReparameterization():
                local.append(elbo.differentiable_loss(model, guide, x, y))
        local = torch.stack(local)
    stderr = (plain.var() / len(plain) + local.var() / len(local)).sqrt()
    assert abs(plain.mean() - local.mean()) < 4 * stderr
    assert local.var() < plain.var()  # the point of the trick


def test_only_the_tensor_a_site_stood_in_with_has_a_source():
    from bnn import LocalReparameterization

    normal = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    value, other = torch.zeros(3), torch.zeros(3)
    with LocalReparameterization() as messenger:
        messenger._sources[id(other)] = (value, normal)  # an entry whose id now names another tensor
        assert LocalReparameterization.source_of(other) is None
        messenger._sources[id(value)] = (value, normal)
        assert LocalReparameterization.source_of(value) is normal
    assert LocalReparameterization.source_of(value) is None  # no messenger active


def test_prior_moves_with_the_module():
    model = BayesianMLP(BNNConfig(hidden_dim=4, prior_scale=2.0)).double()
    site = poutine.trace(model).get_trace(torch.rand(2, 784, dtype=torch.float64)).nodes["fc1.weight"]
    assert site["value"].dtype == torch.float64


def test_model_is_a_pyro_module_with_no_learnable_parameters():
    model = BayesianMLP(BNNConfig(hidden_dim=4))
    assert isinstance(model, pyro.nn.PyroModule)
    assert list(model.parameters()) == []


def test_uniform_cross_entropy_is_per_row():
    from bnn.model import uniform_cross_entropy

    logits = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, -3.0], [1.0, 2.0, 6.0]])
    expected = [-(torch.log_softmax(row, -1)).mean().item() for row in logits]
    assert uniform_cross_entropy(logits).tolist() == pytest.approx(expected, abs=1e-6)
    assert uniform_cross_entropy(logits)[0].item() == pytest.approx(math.log(3))


def test_the_mean_network_s_logits_are_those_of_the_posterior_means_in_any_chunking():
    from bnn import TrainedBNN

    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100), seed=0)
    x = torch.rand(9, 784)
    guide = trained.guide
    hidden = torch.relu(x @ guide.fc1_weight_loc.T + guide.fc1_bias_loc)
    expected = hidden @ guide.fc2_weight_loc.T + guide.fc2_bias_loc
    assert torch.allclose(trained.mean_logits(x), expected, atol=1e-5)
    assert torch.allclose(trained.mean_logits(x, batch_size=4), expected, atol=1e-5)
    assert trained.mean_logits(x[:0]).shape == (0, 10)
