"""Written characters that are no digit: the bank leaves out digits and their look-alikes, and draws like MNIST."""

import numpy as np
import torch

from inference.training import contrast, glyphs
from tests.conftest import centres_of_mass


def test_digit_lookalikes_follow_unicode_confusables_and_case():
    lookalikes = glyphs.digit_lookalikes()
    assert set("0123456789") <= lookalikes
    # Confusable with 0 and 1, and the other case of those, which a scale to a fixed box erases.
    assert set("OoIl|") <= lookalikes and "\N{GREEK CAPITAL LETTER OMICRON}" in lookalikes
    assert not set("AHKMWXahkmwx?&") & lookalikes


def test_the_bank_holds_letters_and_symbols_but_no_digit():
    chars = glyphs.glyph_characters("DejaVuSans.ttf")
    assert {"A", "x", "\N{GREEK SMALL LETTER ALPHA}", "\N{RIGHTWARDS ARROW}", "?"} <= set(chars)
    assert not set(chars) & glyphs.digit_lookalikes()
    assert not any(c.isdigit() or c.isspace() for c in chars)


def test_the_bank_is_in_mnist_format_and_has_no_bars():
    bank = glyphs.glyph_bank()
    assert bank.dtype == torch.float32 and bank.ndim == 2 and bank.shape[1] == 784 and len(bank) > 5000
    assert bank.min() >= 0 and bank.max() <= 1
    image = bank.view(-1, 28, 28)
    cols, rows = (image.amax(1) > 0.2).sum(-1), (image.amax(2) > 0.2).sum(-1)
    extent = torch.maximum(rows, cols)  # MNIST's 20-pixel box (hairline glyphs come out fainter and smaller)
    assert (extent <= 21).all() and extent.float().median() == 20
    widths = [glyphs._width_to_height(a) for a in image[::50].numpy()]
    assert min(widths) > glyphs.MIN_WIDTH_TO_HEIGHT


def test_written_glyphs_are_distorted_draws_centred_like_mnist():
    torch.manual_seed(0)
    drawn = glyphs.written_glyphs(128, torch.device("cpu"))
    assert drawn.shape == (128, 784) and drawn.min() >= 0 and drawn.max() <= 1
    assert ((centres_of_mass(drawn) - 14.0).abs() < 1.5).all()
    # Distorted: no draw is a bank image as it is.
    bank = glyphs.glyph_bank()
    nearest = torch.cdist(drawn, bank).amin(1)
    assert (nearest > 0.5).all()
    # Half are drawn with a wider pen: more ink than the rest.
    ink = (drawn > 0.5).sum(-1).float()
    assert np.ptp(ink.numpy()) > 50


def test_glyph_share_decides_how_many_contrast_inputs_are_written_characters(monkeypatch):
    marker = torch.full((784,), 0.123)
    monkeypatch.setattr(contrast, "written_glyphs", lambda n, device: marker.expand(n, -1).clone())
    x, y = torch.rand(400, 784), torch.zeros(400, dtype=torch.long)
    is_glyph = lambda out: (out == 0.123).all(-1)  # noqa: E731
    assert not is_glyph(contrast.contrast_inputs(x, y, glyphs=0.0)).any()
    assert is_glyph(contrast.contrast_inputs(x, y, near=0.5, glyphs=1.0)).all()
    share = is_glyph(contrast.contrast_inputs(x, y, glyphs=0.25)).float().mean()
    assert 0.15 < share < 0.35
