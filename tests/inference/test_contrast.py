"""The noise-contrastive prior: corrupted digits, and the factor the model adds for them."""

import math

import pyro
import pytest
import torch
from pyro import poutine

from bnn import BayesianMLP, BNNConfig
from bnn.model import uniform_cross_entropy
from inference.contrast import contrast_inputs, heavy_noise, permute_pixels, shuffle_blocks
from tests.conftest import synthetic


def test_corruptions_keep_the_ink_and_lose_the_shape():
    x = synthetic(20).images
    permuted = permute_pixels(x)
    assert torch.equal(permuted.sort(-1).values, x.sort(-1).values) and not torch.equal(permuted, x)
    shuffled = shuffle_blocks(x)
    blocks = lambda t: t.reshape(-1, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(t.shape[0], 16, 49)  # noqa: E731
    for a, b in zip(blocks(shuffled), blocks(x), strict=True):  # the same 16 blocks, in another order
        assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))
    noisy = heavy_noise(x)
    assert noisy.min() >= 0 and noisy.max() <= 1 and (noisy - x).abs().mean() > 0.1
    mixed = contrast_inputs(x)
    assert mixed.shape == x.shape and mixed.min() >= 0 and mixed.max() <= 1


def test_uniform_cross_entropy_is_log_c_at_uniform_and_larger_elsewhere():
    assert uniform_cross_entropy(torch.zeros(10)).item() == pytest.approx(math.log(10))
    peaked = torch.tensor([5.0] + [0.0] * 9)
    expected = -torch.log_softmax(peaked, -1).mean()
    assert uniform_cross_entropy(peaked).item() == pytest.approx(expected.item()) and expected > math.log(10)


def test_the_contrast_factor_is_weighted_and_scaled_like_the_data():
    """log p = N/B * sum_data log p(y|x) - weight * N/B' * sum_contrast CE(uniform, p(.|x~)), for one drawn network."""
    torch.manual_seed(0)
    model = BayesianMLP(BNNConfig(hidden_dim=8, num_data=1000))
    x, y, contrast = torch.rand(5, 784), torch.randint(0, 10, (5,)), torch.rand(3, 784)
    trace = poutine.trace(model).get_trace(x, y, contrast, 0.5)
    trace.compute_log_prob()
    weights = {name: trace.nodes[name]["value"] for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}

    def logits(inputs):
        return torch.relu(inputs @ weights["fc1.weight"].T + weights["fc1.bias"]) @ weights["fc2.weight"].T + weights["fc2.bias"]

    data = torch.distributions.Categorical(logits=logits(x)).log_prob(y).sum() * 1000 / 5
    prior = -0.5 * uniform_cross_entropy(logits(contrast)).sum() * 1000 / 3
    assert trace.nodes["obs"]["log_prob_sum"].item() == pytest.approx(data.item(), rel=1e-5)
    assert trace.nodes["contrast_prior"]["log_prob_sum"].item() == pytest.approx(prior.item(), rel=1e-5)
    pyro.clear_param_store()
