"""Label-preserving augmentation: random translations, affine maps and elastic fields."""

import math

import pytest
import torch

from inference.training.augment import random_shift


def test_shifts_move_every_digit_by_at_most_max_shift_and_keep_its_ink():
    x = torch.zeros(500, 784)
    x.view(500, 28, 28)[:, 10:18, 9:17] = torch.rand(500, 8, 8)  # ink well inside the frame
    torch.manual_seed(0)
    moved = random_shift(x, 2)
    assert torch.allclose(moved.sum(-1), x.sum(-1))  # nothing falls off the frame
    rows = moved.view(500, 28, 28).sum(-1).nonzero()
    assert rows[:, 1].min() >= 8 and rows[:, 1].max() <= 19
    offsets = set()
    for before, after in zip(x.view(500, 28, 28), moved.view(500, 28, 28), strict=True):
        found = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(torch.roll(before, (dy, dx), (0, 1)), after)
        ]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) == 25  # every offset in [-2, 2] x [-2, 2] occurs


def test_no_shift_is_the_identity():
    x = torch.rand(3, 784)
    assert random_shift(x, 0) is x


def test_the_identity_grid_reproduces_every_pixel():
    from inference.training.augment import grid_from, resample

    x = torch.rand(4, 784)
    assert torch.allclose(resample(x, grid_from(torch.eye(2, 3).expand(4, 2, 3))), x, atol=1e-6)


def test_a_pure_shift_moves_the_ink_by_whole_pixels():
    from inference.training.augment import grid_from, resample

    x = torch.zeros(1, 784)
    x.view(28, 28)[10, 12] = 1.0
    theta = torch.tensor([[[1.0, 0.0, -2 * 3 / 28], [0.0, 1.0, 2 * 1 / 28]]])  # 3 pixels right, 1 pixel up
    moved = resample(x, grid_from(theta)).view(28, 28)
    assert moved[9, 15].item() == pytest.approx(1.0, abs=1e-5) and moved.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_a_random_affine_map_s_shift_is_uniform_within_shift_pixels():
    """With no rotation, scale or shear the map is a translation: every pixel moves by the same (dx, dy), each uniform
    on [-shift, shift] pixels."""
    from inference.training.augment import SIDE, _base_grid, affine_grid

    torch.manual_seed(0)
    grid = affine_grid(4000, torch.device("cpu"), rotation=0.0, scale=0.0, shear=0.0, shift=3.0).view(4000, -1, 2)
    moves = (grid - _base_grid(torch.device("cpu"))[:, :2]) * SIDE / 2  # grid units -> pixels
    assert torch.allclose(moves, moves[:, :1].expand_as(moves), atol=1e-4)  # one translation per map
    shift = moves[:, 0]  # (4000, 2)
    assert shift.abs().max() <= 3.0 + 1e-4 and (shift.amax(0) > 2.95).all() and (shift.amin(0) < -2.95).all()
    assert shift.mean(0).abs().max() < 0.15 and shift.var(0).sub(3.0**2 / 3).abs().max() < 0.3  # U(-3, 3): variance 3


def test_a_random_affine_map_without_shear_is_a_rotation_and_a_zoom_within_range():
    """theta's linear part (output -> input) is R(angle) / zoom: orthogonal columns of norm 1 / zoom, zoom in 1 +- 0.2."""
    from inference.training.augment import _base_grid, affine_grid

    torch.manual_seed(0)
    grid = affine_grid(500, torch.device("cpu"), rotation=30.0, scale=0.2, shear=0.0, shift=0.0).view(500, -1, 2)
    base = _base_grid(torch.device("cpu"))
    linear = torch.linalg.lstsq(base.expand(500, -1, -1), grid).solution[:, :2]  # (500, 2, 2): grid = base @ theta.T
    columns = linear.norm(dim=1)
    assert torch.allclose(columns[:, 0], columns[:, 1], atol=1e-4)
    assert (linear[:, 0] * linear[:, 1]).sum(-1).abs().max() < 1e-4  # orthogonal
    zoom = 1 / columns[:, 0]
    assert zoom.min() >= 0.8 - 1e-4 and zoom.max() <= 1.2 + 1e-4 and zoom.min() < 0.82 and zoom.max() > 1.18
    angle = torch.rad2deg(torch.atan2(linear[:, 0, 1], linear[:, 0, 0])).abs()
    assert angle.max() <= 30.0 + 1e-3 and angle.max() > 29.0


def test_the_gaussian_smoothing_matrix_is_a_normalised_gaussian_inside_the_frame():
    from inference.training.augment import gaussian_smoothing

    smooth = gaussian_smoothing(2.0, torch.device("cpu"))
    assert smooth[14].sum().item() == pytest.approx(1.0, abs=1e-4)  # far from the edges the whole kernel fits
    assert smooth[0].sum().item() < 0.7  # at the edge half of it falls outside the frame
    assert smooth[14, 16].item() == pytest.approx(smooth[14, 14].item() * math.exp(-0.5), rel=1e-5)


def test_elastic_fields_have_the_smoothed_uniform_noise_s_spread():
    """Uniform noise on [-1, 1] (variance 1/3) through a 2-D Gaussian of sigma s keeps variance 1/3 * 1/(4 pi s^2)."""
    from inference.training.augment import SIDE, elastic_field

    torch.manual_seed(0)
    field = elastic_field(2000, torch.device("cpu"), alpha=10.0, sigma=3.0)[:, 10:18, 10:18]  # away from the edges
    pixels = field * SIDE / 2  # back to pixels
    expected = 10.0 * math.sqrt(1 / 3 / (4 * math.pi * 3.0**2))
    assert pixels.std().item() == pytest.approx(expected, rel=0.05)


def test_distortions_keep_a_digit_in_the_frame_and_nothing_at_strength_zero():
    from inference.training.augment import random_distortion

    x = torch.zeros(300, 784)
    x.view(300, 28, 28)[:, 8:20, 11:17] = 1.0
    assert random_distortion(x, 0.0) is x
    torch.manual_seed(0)
    out = random_distortion(x, 1.0)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    ratio = out.sum(-1) / x.sum(-1)  # the scale (within 12%) and the elastic stretch change the ink's area
    assert ratio.min() > 0.3 and ratio.max() < 3 and 0.9 < ratio.median() < 1.1


def test_a_wider_pen_adds_one_pixel_on_every_side_of_a_stroke():
    from inference.training.augment import wider_pen

    image = torch.zeros(1, 28, 28)
    image[0, 10:18, 14] = 1.0  # a vertical bar one pixel wide, eight long
    wide = wider_pen(image.reshape(1, -1)).reshape(28, 28)
    assert wide[9:19, 13:16].eq(1).all() and wide.sum() == 3 * 10  # three wide, one longer at each end
    assert torch.equal(wider_pen(torch.zeros(2, 784)), torch.zeros(2, 784))


def test_a_share_of_the_digits_gets_the_wider_pen_and_none_at_share_zero():
    from inference.training.augment import random_wider_pen, wider_pen

    x = torch.rand(4000, 784) * (torch.rand(4000, 784) > 0.9)
    torch.manual_seed(0)
    out = random_wider_pen(x, 0.5)
    widened = (out != x).any(1)
    assert 0.45 < widened.float().mean() < 0.55
    assert torch.equal(out[widened], wider_pen(x[widened]))
    assert random_wider_pen(x, 0.0) is x
