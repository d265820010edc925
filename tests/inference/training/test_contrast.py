"""The noise-contrastive prior: corrupted digits, and the factor the model adds for them."""

import math

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine

from bnn import BayesianMLP, BNNConfig
from bnn.model import uniform_cross_entropy
from inference.training.contrast import contrast_inputs, heavy_noise, permute_pixels, shuffle_blocks
from tests.conftest import centres_of_mass, synthetic


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


def test_near_digit_inputs_sit_where_mnist_puts_its_digits():
    """Strokes, warps and overlays come out in [0, 1], their ink fitted to a 20-pixel box and centred by mass at (14, 14)."""
    from inference.training.contrast import overlay_pairs, pen_strokes, warp_past_recognition

    torch.manual_seed(0)
    digits = synthetic(64)
    # Digit-like ink on a black page: a ring of random size and place.
    radius, cy, cx = torch.randint(5, 9, (64, 1, 1)), torch.randint(10, 18, (64, 1, 1)), torch.randint(10, 18, (64, 1, 1))
    yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    rings = ((((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt() - radius).abs() < 1.2).float()
    overlaid = overlay_pairs(rings.reshape(64, -1), digits.labels)
    for made in (pen_strokes(64, torch.device("cpu")), warp_past_recognition(rings.reshape(64, -1)), overlaid):
        assert made.shape == (64, 784) and made.min() >= 0 and made.max() <= 1
        img = made.view(64, 28, 28)
        assert (img.sum((1, 2)) > 5).all()
        assert ((centres_of_mass(made) - 14.0).abs() < 1.5).all()
        rows, cols = (img.amax(2) > 0.2).sum(-1), (img.amax(1) > 0.2).sum(-1)
        assert (torch.maximum(rows, cols) <= 23).all() and torch.maximum(rows, cols).float().mean() > 15


def test_pen_strokes_are_drawn_as_wide_as_mnist_strokes():
    """Twice the ink's area over its outline, at the median: MNIST's training digits measure 2.8 pixels."""
    from scipy import ndimage

    from inference.training.contrast import pen_strokes

    torch.manual_seed(0)
    ink = (pen_strokes(200, torch.device("cpu")) > 0.5).view(-1, 28, 28).numpy()
    widths = [2 * b.sum() / (b & ~ndimage.binary_erosion(b)).sum() for b in ink]
    assert 2.4 < float(np.median(widths)) < 3.2


def test_overlays_pair_two_digits_of_different_classes_and_leave_out_ones():
    from inference.training import contrast

    labels = torch.arange(40) % 10
    images = torch.eye(40).repeat_interleave(20, dim=1)[:, :784]  # image i lights its own pixels only
    # No shift and no refit, so that each overlay shows which two images made it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(contrast, "OVERLAY_OFFSET", (0.0, 0.0))
        patch.setattr(contrast, "normalize_box", lambda x: x)
        overlaid = contrast.overlay_pairs(images, labels)
    for i in range(40):
        taken = [j for j in range(40) if bool((overlaid[i] * images[j]).sum() > 1)]  # resampling leaves specks
        assert len(taken) == 2 and labels[taken[0]] != labels[taken[1]] and 1 not in labels[taken].tolist()
        if labels[i] != 1:
            assert i in taken


def test_near_contrast_needs_labels_and_zero_never_draws_near_inputs(monkeypatch):
    import inference.training.contrast as contrast

    with pytest.raises(ValueError, match="need the digits' labels"):
        contrast.contrast_inputs(torch.rand(4, 784), near=0.5)
    called = []
    monkeypatch.setattr(contrast, "NEAR", tuple(lambda x, y, k=k: called.append(k) or x for k in range(3)))
    contrast.contrast_inputs(torch.rand(64, 784), torch.zeros(64, dtype=torch.long), near=0.0)
    assert called == []
    contrast.contrast_inputs(torch.rand(64, 784), torch.zeros(64, dtype=torch.long), near=1.0)
    assert sorted(set(called)) == [0, 1, 2]


def test_a_training_batch_s_contrast_inputs_are_its_first_quarter_made_as_the_config_asks(monkeypatch):
    from inference.training import TrainConfig, contrast

    calls = []
    monkeypatch.setattr(contrast, "contrast_inputs", lambda x, y, *shares: calls.append((x, y, shares)) or x)
    x, y = torch.rand(10, 784), torch.arange(10)
    config = TrainConfig(near_contrast=0.1, glyph_contrast=0.2, stroke_glyphs=0.3)
    contrast.contrast_batch(x, y, config)
    made_from, labels, shares = calls[-1]
    assert torch.equal(made_from, x[:2]) and torch.equal(labels, y[:2]) and shares == (0.1, 0.2, 0.3)
    contrast.contrast_batch(x[:3], y[:3], config)  # never an empty quarter
    assert len(calls[-1][0]) == 1
