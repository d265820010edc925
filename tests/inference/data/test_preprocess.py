"""Real-world images to MNIST's format: re-rendered MNIST digits come back as they were."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from inference import predict_with_abstain
from inference.data import mnist_format, mnist_format_batch, preprocess
from inference.data.preprocess import CENTRE, DIGIT_BOX, PHOTO_SIDE, RULE_LEVEL, background, remove_rules
from inference.evaluation.sets import on_paper
from inference.predictive import NO_INK


def stroke(height: int = 120, width: int = 30) -> np.ndarray:
    """A black vertical bar on a white page: a drawn "1"."""
    page = np.ones((200, 200))
    page[40 : 40 + height, 90 : 90 + width] = 0.0
    return page


def test_the_ink_is_fitted_to_20_pixels_and_centred_by_mass():
    digit, has_ink = mnist_format(stroke(height=120, width=30))
    assert has_ink and digit.shape == (28, 28) and digit.dtype == np.float32
    rows, cols = np.nonzero(digit > 0.5)
    assert rows.max() - rows.min() + 1 == DIGIT_BOX  # the long side fills the box
    assert 4 <= cols.max() - cols.min() + 1 <= 6  # 30/120 of it, aspect ratio kept
    assert np.allclose(ndimage.center_of_mass(digit), CENTRE, atol=0.5)


def test_dark_on_light_and_light_on_dark_give_the_same_digit():
    page = stroke()
    a, _ = mnist_format(page)
    b, _ = mnist_format(1.0 - page)
    c, _ = mnist_format(Image.fromarray((page * 255).astype(np.uint8)).convert("RGB"))
    assert np.allclose(a, b) and np.abs(a - c).max() < 0.02


def test_black_ink_on_a_transparent_background_is_not_lost():
    rgba = np.zeros((200, 200, 4), dtype=np.uint8)
    rgba[40:160, 90:120] = (0, 0, 0, 255)  # opaque black ink, transparent elsewhere
    digit, has_ink = mnist_format(Image.fromarray(rgba, mode="RGBA"))
    reference, _ = mnist_format(stroke())
    assert has_ink and np.abs(digit - reference).max() < 0.02


@pytest.mark.parametrize(
    "blank",
    [
        np.ones((280, 280)),  # an empty white canvas
        np.zeros((50, 80)),  # black
        np.full((100, 100), 0.7),  # a grey page
        0.9 + 0.05 * np.random.default_rng(0).random((120, 90)),  # paper texture, no ink
        np.zeros((0, 0)),
    ],
    ids=["white", "black", "grey", "paper", "empty"],
)
def test_an_image_without_ink_has_no_digit(blank):
    digit, has_ink = mnist_format(blank)
    assert not has_ink and not digit.any()


def test_blank_images_are_refused_whatever_the_network_says(tiny):
    pages = [Image.new("L", (280, 280), 255), Image.fromarray((stroke() * 255).astype(np.uint8))]
    result = predict_with_abstain(tiny, pages, mode="median", threshold=0.0, preprocess="mnist")
    assert result.reason[0] == NO_INK and result.abstained[0] and result.prediction[0] == -1
    assert "no ink" in result.answers()[0]
    assert not result.abstained[1]  # threshold 0: any digit is a candidate once there is ink
    assert result.images is not None and result.images.shape == (2, 784)


def test_batches_of_any_sizes_and_bad_inputs(tiny):
    batch, inked = mnist_format_batch([stroke(), np.zeros((10, 10), dtype=np.uint8), Image.new("RGB", (5, 7))])
    assert batch.shape == (3, 784) and inked.tolist() == [True, False, False]
    stacked, _ = mnist_format_batch(np.stack([stroke(), stroke()]))
    assert stacked.shape == (2, 784) and torch.equal(stacked[0], stacked[1])
    with pytest.raises(ValueError, match="empty batch"):
        mnist_format_batch([])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mnist_format(np.full((5, 5), 2.0))
    with pytest.raises(ValueError, match="NaN"):
        mnist_format(np.full((5, 5), np.nan))
    with pytest.raises(TypeError, match="uint8"):
        mnist_format(np.zeros((5, 5), dtype=np.int32))
    with pytest.raises(TypeError):
        mnist_format_batch("digit.png")
    with pytest.raises(ValueError, match="preprocess"):
        predict_with_abstain(tiny, [stroke()], preprocess="emnist")  # type: ignore[arg-type]


def shaded(page: Image.Image, rng: np.random.Generator, grain: float = 0.03) -> Image.Image:
    """``page`` as a phone photographs it: the light falling off to one side and the bottom, and the sensor's grain."""
    height, width = page.height, page.width
    light = np.linspace(1.0, 0.65, width)[None, :] * np.linspace(1.0, 0.85, height)[:, None]
    gray = np.asarray(page, dtype=np.float64) / 255 * light + rng.normal(0, grain, (height, width))
    return Image.fromarray((np.clip(gray, 0, 1) * 255).round().astype(np.uint8))


def test_the_page_under_uneven_light_is_fitted_and_an_even_page_is_its_median():
    rows, cols = np.mgrid[0:200, 0:300] / 100.0
    light = 0.1 + 0.2 * cols + 0.05 * rows**2  # ink lighter than the page, as after inverting
    gray = light.copy()
    gray[60:140, 140:160] += 0.8  # a stroke, inside the border
    gray[0:30, 0] += 0.8  # and ink that touches the frame, which is not page
    np.testing.assert_allclose(background(gray), light, atol=1e-9)
    even = np.full((200, 300), 0.1)
    even[60:140, 140:160] = 0.9
    assert background(even) == 0.1  # a float: the median, as for every evenly lit page before


def ruled(page: Image.Image, rng: np.random.Generator, squared: bool = False) -> Image.Image:
    """``page`` on a notebook's paper: light grey rules (0.75, a light blue's grey) 2 pixels wide every 30 pixels,
    and as many columns on squared paper, the page tilted by up to 6 degrees in the photo."""
    lines = np.ones((2 * page.height, 2 * page.width))
    lines[np.arange(lines.shape[0]) % 30 < 2] = 0.75
    if squared:
        lines[:, np.arange(lines.shape[1]) % 30 < 2] = 0.75
    tilted = Image.fromarray((lines * 255).astype(np.uint8)).rotate(float(rng.uniform(-6, 6)), Image.Resampling.BILINEAR)
    top, left = page.height // 2 + 15, page.width // 2 + 15  # the frame's edges between rules, not along one
    lines = np.asarray(tilted)[top : top + page.height, left : left + page.width]
    return Image.fromarray(np.minimum(np.asarray(page.convert("L")), lines))


def seven(side: int = 240) -> Image.Image:
    """A black 7 drawn with a broad pen on a white page ``side`` pixels high."""
    page = Image.new("L", (side * 4 // 3, side), 255)
    ImageDraw.Draw(page).line([(side * 0.5, side * 0.25), (side * 0.85, side * 0.25), (side * 0.6, side * 0.8)], 0, side // 20)
    return page


@pytest.mark.parametrize("squared", [False, True])
def test_a_ruled_or_squared_page_s_lines_are_taken_out(squared):
    """Without it, the rules cross the frame and the ink's box takes them in: the digit shrinks to a speck."""
    plain, _ = mnist_format(seven())
    lined, has_ink = mnist_format(ruled(seven(), np.random.default_rng(0), squared))
    assert has_ink and np.abs(lined - plain).mean() < 0.01
    lined_large, _ = mnist_format(ruled(seven(960), np.random.default_rng(1), squared))  # found at a quarter of the size
    assert np.abs(lined_large - mnist_format(seven(960))[0]).mean() < 0.01


def test_lines_as_dark_as_the_writing_and_textures_stay():
    """A tight crop of a Z-shaped 2 has two bars across its frame: they are the writing, not rules. A blank page's
    rules are all the ink there is, and a texture covers every row: neither has rules to take out."""
    z = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(z).line([(0, 5), (99, 5), (0, 94), (99, 94)], fill=0, width=8)
    bars = 1.0 - np.asarray(z, dtype=np.float64) / 255
    np.testing.assert_array_equal(remove_rules(bars), bars)
    blank = np.zeros((200, 300))
    blank[np.arange(200) % 30 < 2] = 1.0
    np.testing.assert_array_equal(remove_rules(blank), blank)
    texture = (np.random.default_rng(0).random((200, 300)) > 0.5) * RULE_LEVEL
    np.testing.assert_array_equal(remove_rules(texture), texture)


@pytest.mark.parametrize("light", ["even", "uneven, with grain", "ruled or squared, tilted"])
def test_mnist_digits_rerendered_large_off_centre_and_dark_on_light_keep_their_accuracy(mnist_model, mnist_test, light):
    """The issue's check: within 1 point of the originals' accuracy (here on 1,000 test digits), on an evenly lit
    page, on one whose light falls off by a third across it, with grain, and on ruled and squared paper, tilted."""
    rng = np.random.default_rng(0)
    digits, labels = mnist_test.images[:1000].reshape(-1, 28, 28).numpy(), mnist_test.labels[:1000]
    pages = []
    for index, digit in enumerate(digits):
        size = int(rng.integers(60, 150))
        at = (int(rng.integers(0, 240 - size)), int(rng.integers(0, 320 - size)))
        page = on_paper(digit, size, (240, 320), at)
        if light == "uneven, with grain":
            page = shaded(page, rng)
        elif light != "even":
            page = ruled(page, rng, squared=index % 2 == 1)
        pages.append(page)
    original = predict_with_abstain(mnist_model, digits, mode="median")
    photos = predict_with_abstain(mnist_model, pages, mode="median", preprocess="mnist")
    original_accuracy = (original.forced_prediction == labels).float().mean().item()
    photo_accuracy = (photos.forced_prediction == labels).float().mean().item()
    assert original_accuracy > 0.85  # a short run; chance is 0.1
    assert photo_accuracy >= original_accuracy - 0.01


def test_a_crop_the_size_of_a_dataset_s_digit_keeps_the_border_s_median_as_its_page(monkeypatch):
    """Below PHOTO_SIDE the border of a tight crop holds ink as well as page: no surface and no grain floor, so such
    a crop (USPS's, MNIST's) reads as it did before photos were modelled; as a photo, the same crop would not."""
    crop = np.zeros((PHOTO_SIDE - 1, PHOTO_SIDE - 1))
    crop[:, :20] = np.linspace(0.0, 0.4, PHOTO_SIDE - 1)[:, None]  # faint ink along a third of the frame
    crop[20:40, 30:34] = 1.0
    default, has_ink = mnist_format(crop)
    monkeypatch.setattr(preprocess, "PHOTO_SIDE", 10**9)
    np.testing.assert_array_equal(mnist_format(crop)[0], default)
    monkeypatch.setattr(preprocess, "PHOTO_SIDE", 1)
    assert has_ink and np.abs(mnist_format(crop)[0] - default).max() > 0.1
