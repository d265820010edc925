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
    twins = shuffle_blocks(x[:1].expand(8, -1))  # each image gets its own order of the blocks
    assert len({tuple(t.tolist()) for t in twins}) == 8
    noisy = heavy_noise(x)
    assert noisy.min() >= 0 and noisy.max() <= 1 and (noisy - x).abs().mean() > 0.1
    mixed, digit_share = contrast_inputs(x)
    assert mixed.shape == x.shape and mixed.min() >= 0 and mixed.max() <= 1
    assert torch.equal(digit_share, torch.zeros(len(x)))  # no character is cut into a digit: every target uniform


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


def test_heavy_noise_adds_gaussian_noise_of_a_standard_deviation_in_its_range():
    torch.manual_seed(0)
    grey = torch.full((300, 784), 0.5)
    added = heavy_noise(grey, low=0.05, high=0.1) - 0.5  # too faint to be clipped
    spread = added.std(-1)
    assert spread.min() > 0.045 and spread.max() < 0.105 and added.mean().abs() < 0.002
    kurtosis = (added / spread[:, None]).pow(4).mean()
    assert kurtosis == pytest.approx(3.0, abs=0.1)  # Gaussian


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


def test_normalize_box_fits_the_ink_to_a_20_pixel_box_centred_by_mass_at_14_14():
    """MNIST's own layout (and mnist_format's): the ink's longer side 20 pixels, its centre of mass at (14, 14)."""
    from inference.training.augment import normalize_box

    x = torch.zeros(4, 28, 28)
    x[0, 2:8, 3:13] = 1.0  # a 10 x 6 block in a corner
    x[1, 15:27, 20:24] = 1.0  # a 4 x 12 bar at the other corner
    x[2, 5:25, 4:24] = 1.0  # already 20 x 20, off-centre
    x[3, 9:19, 9:14] = torch.linspace(0.3, 1.0, 5)  # ink heavier to the right
    boxed = normalize_box(x.reshape(4, -1))
    assert ((centres_of_mass(boxed) - 14.0).abs() < 0.3).all()
    img = boxed.view(4, 28, 28)
    rows, cols = (img.amax(2) > 0.2).sum(-1), (img.amax(1) > 0.2).sum(-1)
    assert ((torch.maximum(rows, cols) - 20).abs() <= 1).all()


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


def test_two_digits_other_than_1_are_enough_to_leave_out_the_ones(monkeypatch):
    from inference.training import contrast

    labels = torch.tensor([1, 1, 1, 3, 5])
    images = torch.eye(5).repeat_interleave(157, dim=1)[:, :784]  # image i lights its own pixels only
    monkeypatch.setattr(contrast, "OVERLAY_OFFSET", (0.0, 0.0))
    monkeypatch.setattr(contrast, "normalize_box", lambda x: x)
    overlaid = contrast.overlay_pairs(images, labels)
    for made in overlaid:
        assert [j for j in range(5) if bool((made * images[j]).sum() > 1)] == [3, 4]


def test_an_overlay_draws_its_second_digit_a_few_pixels_from_the_first(monkeypatch):
    """The second digit is shifted ``OVERLAY_OFFSET`` pixels (4-7) in a random direction: both stay in the frame."""
    from inference.training import contrast

    torch.manual_seed(0)
    dot = torch.zeros(28, 28)
    dot[13:15, 13:15] = 1.0  # centred at (13.5, 13.5)
    monkeypatch.setattr(contrast, "normalize_box", lambda x: x)  # no refit: the shift shows as drawn
    n = 400
    overlaid = contrast.overlay_pairs(dot.reshape(1, 784).repeat(n, 1), torch.arange(n) % 2 + 2).view(n, 28, 28)
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    distance = ((rows - 13.5) ** 2 + (cols - 13.5) ** 2).sqrt()
    moved = overlaid * (distance > 2.5)  # the ink away from the first dot: the second one
    assert (moved.sum((1, 2)) > 1.0).all(), "the second digit left the frame"
    shift = centres_of_mass(moved.reshape(n, 784)) - 13.5
    assert ((shift.norm(dim=-1) >= 3.5) & (shift.norm(dim=-1) <= 7.5)).all()
    assert shift.mean(0).norm() < 0.6  # no direction preferred (the mean shift's standard error is about 0.2)


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
    fake = lambda x, y, **kinds: calls.append((x, y, kinds)) or (x, torch.full((len(x),), 0.5))  # noqa: E731
    monkeypatch.setattr(contrast, "contrast_inputs", fake)
    x, y = torch.rand(10, 784), torch.arange(10)
    config = TrainConfig(
        near_contrast=0.1, glyph_contrast=0.2, stroke_glyphs=0.3, glyph_mix=0.4, same_shape_case=True, glyph_wide_pen=0.6
    )
    made, targets = contrast.contrast_batch(x, y, config, 10)
    made_from, labels_given, kinds = calls[-1]
    assert torch.equal(made_from, x[:2]) and torch.equal(labels_given, y[:2])
    asked = {
        "near": 0.1,
        "glyphs": 0.2,
        "stroke_glyphs": 0.3,
        "glyph_mix": 0.4,
        "same_shape_case": True,
        "character_weights": None,
        "glyph_wide_pen": 0.6,
    }
    assert kinds == asked
    mined = torch.rand(5)
    contrast.contrast_batch(x, y, config, 10, mined)
    assert calls[-1][2]["character_weights"] is mined
    assert torch.equal(made, x[:2]) and torch.equal(targets, contrast.contrast_targets(y[:2], torch.full((2,), 0.5), 10))
    assert contrast.contrast_batch(x, y, TrainConfig(glyph_mix=0.0), 10)[1] is None  # no mixes: uniform targets
    contrast.contrast_batch(x[:3], y[:3], config, 10)  # never an empty quarter
    assert len(calls[-1][0]) == 1


# --- Mixture Outlier Exposure: characters cut into digits --------------------------------------------------------


def _image(*pixels: int) -> torch.Tensor:
    image = torch.zeros(784)
    image[list(pixels)] = 1.0
    return image


def test_paste_counts_the_digit_s_share_in_ink():
    """Hand counts: a 4-pixel digit, a character of 2 pixels elsewhere, boxes chosen by hand."""
    from inference.training.contrast import paste

    digit, character = _image(100, 101, 102, 103), _image(300, 301)
    boxes = torch.stack(
        [
            _image(103, 300),  # one digit pixel replaced by one character pixel: kept 3 of 4, 3 of the 4 drawn
            _image(102, 103),  # a blank corner over half the digit: kept 2 of 4, all of the 2 drawn
            _image(300, 301),  # the character beside the whole digit: kept 4 of 4, 4 of the 6 drawn
            _image(500),  # a box over the blank border: the digit untouched
            torch.ones(784),  # the whole frame: the character alone
        ]
    ).bool()
    mixed, share = paste(character.expand(5, -1), digit.expand(5, -1), boxes)
    assert share.tolist() == pytest.approx([0.75, 0.5, 4 / 6, 1.0, 0.0])
    assert torch.equal(mixed[0], _image(100, 101, 102, 300)) and torch.equal(mixed[3], digit)
    assert torch.equal(mixed[4], character)


def test_boxes_are_rectangles_of_the_frame_covering_a_uniform_share():
    from inference.training.contrast import random_boxes

    torch.manual_seed(0)
    boxes = random_boxes(4000, torch.device("cpu")).view(-1, 28, 28)
    rows, columns = boxes.any(2), boxes.any(1)
    assert torch.equal(boxes, rows[:, :, None] & columns[:, None, :])  # each mask is one rectangle (or empty)
    for lines in (rows, columns):  # contiguous: its first and last line bound every line in between
        count = lines.sum(-1)
        first = lines.float().argmax(-1)
        assert ((lines.float().flip(-1).argmax(-1) == 28 - first - count) | (count == 0)).all()
    inside = (rows[:, 0] == 0) & (rows[:, -1] == 0) & (columns[:, 0] == 0) & (columns[:, -1] == 0)
    sides = rows[inside].sum(-1)
    assert torch.equal(sides, columns[inside].sum(-1)) and (sides % 2 == 0).all()  # unclipped: even squares
    area = boxes.float().mean((1, 2))
    # Unclipped, the side is floor(28 sqrt(u)) rounded down to even: the area share averages a little under 1/2;
    # boxes centred near an edge lose part of it.
    assert 0.25 < area.mean() < 0.5 and area.max() > 0.85 and (area == 0).float().mean() < 0.05


def test_cut_into_digits_gives_mnist_s_format_and_shares_in_the_unit_interval():
    from inference.training.contrast import cut_into_digits

    torch.manual_seed(0)
    x, characters = synthetic(64).images, synthetic(64, seed=1).images.flip(-1)
    mixed, share = cut_into_digits(characters, x)
    assert mixed.shape == x.shape and mixed.min() >= 0 and mixed.max() <= 1 + 1e-6
    assert (share >= 0).all() and (share <= 1).all() and 0 < share.mean() < 1


def test_contrast_targets_run_from_the_uniform_to_the_digit_s_class():
    from inference.training.contrast import contrast_targets

    targets = contrast_targets(torch.tensor([3, 3, 7]), torch.tensor([0.0, 1.0, 0.5]), 10)
    assert targets.sum(-1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert torch.allclose(targets[0], torch.full((10,), 0.1)) and targets[1].argmax() == 3 and targets[1, 3] == 1
    assert targets[2, 7].item() == pytest.approx(0.55) and targets[2, 0].item() == pytest.approx(0.05)


def test_only_written_characters_are_cut_into_digits_and_only_as_often_as_asked(monkeypatch):
    import inference.training.contrast as contrast

    monkeypatch.setattr(contrast, "written_glyphs", lambda n, device, *kinds, **weights: torch.full((n, 784), 0.123))
    torch.manual_seed(0)
    x, y = synthetic(400).images, torch.zeros(400, dtype=torch.long)
    _, none = contrast.contrast_inputs(x, y, glyphs=1.0, glyph_mix=0.0)
    assert torch.equal(none, torch.zeros(400))
    _, far = contrast.contrast_inputs(x, y, glyphs=0.0, glyph_mix=1.0)
    assert torch.equal(far, torch.zeros(400))
    _, half = contrast.contrast_inputs(x, y, glyphs=1.0, glyph_mix=0.5)
    assert 0.35 < (half > 0).float().mean() < 0.65  # the other half, and boxes over the whole frame, keep no digit


def test_the_contrast_factor_takes_the_targets_it_is_given():
    """With targets t the factor is -weight * N/B' * sum CE(t, p); uniform targets give the default factor."""
    from bnn.model import soft_cross_entropy

    torch.manual_seed(0)
    model = BayesianMLP(BNNConfig(hidden_dim=8, num_data=1000))
    x, y, contrast = torch.rand(5, 784), torch.randint(0, 10, (5,)), torch.rand(3, 784)
    targets = torch.softmax(torch.randn(3, 10), -1)
    trace = poutine.trace(model).get_trace(x, y, contrast, 0.5, targets)
    trace.compute_log_prob()
    logits = trace.nodes["_RETURN"]["value"]  # the data's logits; the contrast's from the same drawn weights:
    w = {name: trace.nodes[name]["value"] for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}
    contrast_logits = torch.relu(contrast @ w["fc1.weight"].T + w["fc1.bias"]) @ w["fc2.weight"].T + w["fc2.bias"]
    expected = 0.5 * (targets * torch.log_softmax(contrast_logits, -1)).sum() * 1000 / 3
    assert logits.shape == (5, 10)
    assert trace.nodes["contrast_prior"]["log_prob_sum"].item() == pytest.approx(expected.item(), rel=1e-5)
    uniform = torch.full((3, 10), 0.1)
    assert soft_cross_entropy(contrast_logits, uniform).tolist() == pytest.approx(
        uniform_cross_entropy(contrast_logits).tolist(), rel=1e-6
    )
    onehot = torch.nn.functional.one_hot(torch.tensor([1, 2, 3]), 10).float()
    assert soft_cross_entropy(contrast_logits, onehot).tolist() == pytest.approx(
        torch.nn.functional.cross_entropy(contrast_logits, torch.tensor([1, 2, 3]), reduction="none").tolist(), rel=1e-6
    )
    pyro.clear_param_store()


def test_a_training_step_with_characters_cut_into_digits_passes_their_targets(monkeypatch):
    import inference.training.contrast as contrast
    import inference.training.step as step
    from bnn import TrainedBNN
    from inference.training import TrainConfig

    seen, passed = [], []
    real = contrast.contrast_targets
    monkeypatch.setattr(contrast, "contrast_targets", lambda *a: seen.append(real(*a)) or seen[-1])
    real_loss = step.MeanFieldELBO.differentiable_loss
    monkeypatch.setattr(step.MeanFieldELBO, "differentiable_loss", lambda self, *a: passed.append(a[-1]) or real_loss(self, *a))
    torch.manual_seed(0)
    data = synthetic(64)
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=64), seed=0)
    loss = step.minibatch_loss(trained, data.images, data.labels, TrainConfig(glyph_contrast=1.0, glyph_mix=1.0))
    assert torch.isfinite(loss) and len(seen) == 1 and seen[0].shape == (16, 10)
    assert not torch.allclose(seen[0], torch.full((16, 10), 0.1))  # some of each digit's class is kept
    assert passed[-1] is seen[0]  # and the ELBO gets them
    step.minibatch_loss(trained, data.images, data.labels, TrainConfig(glyph_contrast=1.0))
    assert len(seen) == 1  # without mixes, no targets: the uniform factor as before
    pyro.clear_param_store()


def _trained_on_synthetic():
    from bnn import TrainedBNN
    from inference import TrainConfig, train

    data = synthetic(200)
    torch.manual_seed(0)
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=200, init_scale=0.01))
    train(trained, data, TrainConfig(epochs=10, batch_size=50, lr=1e-2, contrast_weight=0.0), progress=False)
    return trained


def test_confident_neighbours_move_the_last_share_within_the_ball_towards_confidence():
    from inference.training.contrast import confident_neighbours

    trained = _trained_on_synthetic()
    contrast = permute_pixels(synthetic(40, seed=1).images)
    for p in trained.guide.parameters():
        p.grad = None
    moved = confident_neighbours(contrast, trained, share=0.5, radius=0.3)
    assert torch.equal(moved[:20], contrast[:20])  # the first half as made
    assert (moved[20:] - contrast[20:]).abs().max() <= 0.3 + 1e-6
    assert moved.min() >= 0 and moved.max() <= 1
    params = {site: loc.detach()[None] for site, loc in trained.guide.locs().items()}
    confidence = [trained.model.sampled_logits(x[20:], params)[0].softmax(-1).amax(-1) for x in (contrast, moved)]
    assert (confidence[1] > confidence[0]).float().mean() > 0.9
    assert all(p.grad is None for p in trained.guide.parameters())  # only the inputs are differentiated


def test_no_share_moves_nothing():
    from inference.training.contrast import confident_neighbours

    contrast = torch.rand(8, 784)
    trained = _trained_on_synthetic()
    assert confident_neighbours(contrast, trained, share=0.0, radius=0.3) is contrast


def test_a_training_step_asks_the_uniform_answer_at_the_moved_inputs(monkeypatch):
    from bnn import TrainedBNN
    from inference import TrainConfig
    from inference.training import contrast as contrast_module
    from inference.training import minibatch_loss, step

    seen = []
    real = contrast_module.confident_neighbours

    def spy(contrast, trained, share, radius):
        out = real(contrast, trained, share, radius)
        seen.append((share, radius, contrast, out))
        return out

    monkeypatch.setattr(step, "confident_neighbours", spy)
    data = synthetic(40)
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=40))
    minibatch_loss(trained, data.images, data.labels, TrainConfig(contrast_weight=0.3))
    assert not seen  # off by default
    minibatch_loss(trained, data.images, data.labels, TrainConfig(contrast_weight=0.3, adversarial_contrast=0.5))
    ((share, radius, before, after),) = seen
    assert (share, radius) == (0.5, 0.3) and before.shape == (10, 784)
    assert not torch.equal(after[5:], before[5:])
