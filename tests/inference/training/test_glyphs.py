"""Written characters that are no digit: the bank leaves out digits and their look-alikes, and draws like MNIST."""

import numpy as np
import pytest
import torch

from bnn import BNNConfig, TrainedBNN
from inference.training import TrainConfig, contrast, glyphs, step
from tests.conftest import centres_of_mass


def test_digit_lookalikes_follow_unicode_confusables_and_case():
    lookalikes = glyphs.digit_lookalikes()
    assert set("0123456789") <= lookalikes
    # Confusable with 0 and 1, and the other case of those, which a scale to a fixed box erases.
    assert set("OoIl|") <= lookalikes and "\N{GREEK CAPITAL LETTER OMICRON}" in lookalikes
    assert not set("AHKMWXahkmwx?&") & lookalikes


def test_same_shape_compares_the_two_cases_as_mnist_draws_them():
    assert glyphs.same_shape("O", "o") and glyphs.same_shape("S", "s")
    assert not glyphs.same_shape("L", "l") and not glyphs.same_shape("E", "e")
    # No font of the bank draws Warang Citi: no evidence that the two cases look alike.
    assert not glyphs.same_shape("\N{WARANG CITI CAPITAL LETTER YUJ}", "\N{WARANG CITI SMALL LETTER YUJ}")


def test_same_shape_case_keeps_letters_whose_other_case_is_no_look_alike():
    everywhere, by_shape = glyphs.digit_lookalikes(), glyphs.digit_lookalikes(same_shape_case=True)
    assert by_shape < everywhere
    # The same-shape pairs stay out of the bank: O and o (0), I and i (1), S and s (through confusables and case).
    assert set("0123456789OoIil|") <= by_shape
    # l is a 1, but L is not; E and e came in through Warang Citi's case pair 𑣆 (a 7) and 𑢦 (an E).
    assert set("ELe") <= everywhere and not set("ELe") & by_shape
    bank = glyphs.glyph_characters("DejaVuSans.ttf", same_shape_case=True)
    assert set("ELe") <= set(bank) and not set(bank) & by_shape


def test_the_bank_holds_letters_and_symbols_but_no_digit():
    chars = glyphs.glyph_characters("DejaVuSans.ttf")
    assert {"A", "x", "\N{GREEK SMALL LETTER ALPHA}", "\N{RIGHTWARDS ARROW}", "?"} <= set(chars)
    assert not set(chars) & glyphs.digit_lookalikes()
    assert not any(c.isdigit() or c.isspace() for c in chars)


def test_width_to_height_measures_the_ink_s_bounding_box():
    image = np.zeros((28, 28))
    image[4:14, 10:14] = 1.0  # 4 pixels wide, 10 tall
    image[20, 0] = 0.1  # too faint to count as ink
    assert glyphs._width_to_height(image) == pytest.approx(0.4)
    assert glyphs._width_to_height(image.T) == pytest.approx(2.5)


def test_render_crops_to_the_ink_without_changing_the_image():
    from inference.data.preprocess import mnist_format

    font = "STIXGeneral.ttf"
    for char in ["A", "g", "\N{INTEGRAL}", "\N{RIGHTWARDS ARROW}", "\N{N-ARY SUMMATION}", ".", " "]:
        (cropped, cropped_ink), (whole, whole_ink) = glyphs.render(char, font), mnist_format(glyphs.typeset(char, font))
        assert cropped_ink == whole_ink and np.array_equal(cropped, whole), char


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


def test_written_glyphs_take_the_share_drawn_with_the_wider_pen():
    ink = {}
    for share in (0.0, 1.0):
        torch.manual_seed(0)
        ink[share] = (glyphs.written_glyphs(400, torch.device("cpu"), wide_pen=share) > 0.5).sum(-1).float().mean()
    assert ink[1.0] > 1.3 * ink[0.0]
    with pytest.raises(ValueError, match="glyph_wide_pen"):
        TrainConfig(glyph_wide_pen=1.5)


def test_written_glyphs_are_distorted_draws_centred_like_mnist():
    torch.manual_seed(0)
    drawn = glyphs.written_glyphs(128, torch.device("cpu"), wide_pen=0.5)
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
    shares = []

    def written(n: int, device: torch.device, strokes: float, same_shape_case: bool, weights=None, wide_pen=0.5) -> torch.Tensor:
        shares.append((strokes, same_shape_case))
        return marker.expand(n, -1).clone()

    monkeypatch.setattr(contrast, "written_glyphs", written)
    x, y = torch.rand(400, 784), torch.zeros(400, dtype=torch.long)
    is_glyph = lambda out: (out == 0.123).all(-1)  # noqa: E731
    assert not is_glyph(contrast.contrast_inputs(x, y, glyphs=0.0)[0]).any()
    assert is_glyph(contrast.contrast_inputs(x, y, near=0.5, glyphs=1.0)[0]).all()
    share = is_glyph(contrast.contrast_inputs(x, y, glyphs=0.25)[0]).float().mean()
    assert 0.15 < share < 0.35
    contrast.contrast_inputs(x, y, glyphs=1.0, stroke_glyphs=0.5)
    assert shares[-1] == (0.5, False)
    # A training minibatch's contrast inputs draw from the bank its configuration asks for.
    contrast.contrast_batch(x, y, TrainConfig(glyph_contrast=1.0, same_shape_case=True), 10)
    assert shares[-1] == (0.0, True)


@pytest.fixture
def undistorted(monkeypatch):
    """Written characters drawn as the bank holds them: no distortion, no wider pen, no re-boxing."""
    for name in ("random_distortion", "random_wider_pen"):
        monkeypatch.setattr(glyphs, name, lambda x, *args: x)
    monkeypatch.setattr(glyphs, "normalize_box", lambda x: x)


def test_weights_decide_which_typeset_characters_are_drawn(undistorted):
    bank = glyphs.glyph_bank()
    weights = torch.zeros(len(bank))
    weights[[7, 700]] = torch.tensor([1.0, 3.0])
    torch.manual_seed(0)
    drawn = glyphs.written_glyphs(400, torch.device("cpu"), weights=weights)
    is_seven, is_seven_hundred = (drawn == bank[7]).all(-1), (drawn == bank[700]).all(-1)
    assert (is_seven | is_seven_hundred).all()
    assert 0.18 < is_seven.float().mean() < 0.32  # in proportion: 1 in 4
    with pytest.raises(ValueError, match="one per typeset character"):
        glyphs.written_glyphs(4, torch.device("cpu"), weights=torch.ones(3))


def test_without_a_count_every_typeset_character_is_drawn_once_in_order(undistorted):
    bank = glyphs.glyph_bank()
    assert torch.equal(glyphs.written_glyphs(None, torch.device("cpu")), bank)
    with pytest.raises(ValueError, match="every character is drawn once"):
        glyphs.written_glyphs(None, torch.device("cpu"), weights=torch.ones(len(bank)))


def test_same_shape_case_draws_from_its_own_bank(undistorted):
    by_shape, default = glyphs.glyph_bank(same_shape_case=True), glyphs.glyph_bank()
    assert len(by_shape) > len(default)  # it leaves out fewer letters
    weights = torch.zeros(len(by_shape))
    weights[-1] = 1.0
    drawn = glyphs.written_glyphs(3, torch.device("cpu"), same_shape_case=True, weights=weights)
    assert torch.equal(drawn, by_shape[-1:].expand(3, -1))


def test_same_shape_case_reaches_the_pen_drawn_bank(undistorted):
    by_shape, default = glyphs.stroke_glyph_bank(same_shape_case=True), glyphs.stroke_glyph_bank()
    assert len(by_shape) > len(default)  # it leaves out fewer letters
    torch.manual_seed(0)
    drawn = glyphs.written_glyphs(2000, torch.device("cpu"), strokes=1.0, same_shape_case=True)
    in_by_shape = (drawn[:, None] == by_shape[None]).all(-1).any(-1)
    in_default = (drawn[:, None] == default[None]).all(-1).any(-1)
    assert in_by_shape.all() and not in_default.all()


def test_mined_weights_are_the_mean_network_s_confidence_on_each_character():
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100), seed=0)
    assert contrast.glyph_weights(trained, TrainConfig()) is None  # uniform draws unless asked
    assert contrast.glyph_weights(trained, TrainConfig(mine_glyphs=True, glyph_contrast=0.0)) is None
    weights = contrast.glyph_weights(trained, TrainConfig(mine_glyphs=True))
    bank = glyphs.glyph_bank()
    assert weights.shape == (len(bank),) and (weights >= 0.1).all() and (weights <= 1).all()
    params = {k: v.loc[None] for k, v in trained.guide.posterior().items()}
    expected = trained.model.sampled_logits(bank[:50], params)[0].softmax(-1).amax(-1)
    assert torch.allclose(weights[:50], expected.detach(), atol=1e-6)


def test_a_training_batch_draws_its_characters_with_the_epoch_s_weights(monkeypatch):
    seen = []
    real = contrast.written_glyphs
    monkeypatch.setattr(
        contrast,
        "written_glyphs",
        lambda *args, weights, wide_pen: seen.append(weights) or real(*args, weights=weights, wide_pen=wide_pen),
    )
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100), seed=0)
    weights = torch.rand(len(glyphs.glyph_bank()))
    x, y = torch.rand(64, 784), torch.randint(10, (64,))
    step.minibatch_loss(trained, x, y, TrainConfig(glyph_contrast=1.0, mine_glyphs=True), glyph_weights=weights)
    assert seen and seen[-1] is weights


def _mnist_pen_width(images: torch.Tensor) -> float:
    """Twice the ink's area over its outline, at the median: MNIST's training digits measure 2.8 pixels."""
    from scipy import ndimage

    ink = (images > 0.5).view(-1, 28, 28).numpy()
    return float(np.median([2 * b.sum() / (b & ~ndimage.binary_erosion(b)).sum() for b in ink]))


def test_the_stroke_bank_draws_characters_with_mnists_pen_and_no_bars():
    bank = glyphs.stroke_glyph_bank()
    assert bank.dtype == torch.float32 and bank.shape[1] == 784 and len(bank) > 150
    assert bank.min() >= 0 and bank.max() <= 1
    image = bank.view(-1, 28, 28)
    extent = torch.maximum((image.amax(1) > 0.2).sum(-1), (image.amax(2) > 0.2).sum(-1))
    assert (extent <= 21).all() and extent.float().median() == 20
    assert 2.4 < _mnist_pen_width(bank) < 3.2
    assert min(glyphs._width_to_height(a) for a in image.numpy()) > glyphs.MIN_WIDTH_TO_HEIGHT


def test_the_stroke_bank_holds_the_fonts_letters_but_not_their_digits_or_lookalikes():
    from HersheyFonts import HersheyFonts

    from inference.data.preprocess import mnist_format

    font, bank = HersheyFonts(), glyphs.stroke_glyph_bank()
    for name in glyphs.STROKE_FONTS:
        font.load_default_font(name)

        def drawn(char: str) -> torch.Tensor:
            strokes = [np.asarray(s, dtype=np.float64) for s in font.strokes_for_text(char) if len(s)]
            return torch.from_numpy(mnist_format(glyphs.draw_strokes(strokes))[0]).reshape(1, -1)

        def distance(char: str) -> float:
            return torch.cdist(drawn(char), bank).min().item()

        assert distance("A") < 0.05 and distance("x") < 0.05  # cdist's own rounding
        assert min(distance(c) for c in "0123456789OoIlS") > 1.0


def test_a_share_of_the_written_characters_comes_from_pen_strokes(monkeypatch):
    monkeypatch.setattr(glyphs, "random_distortion", lambda x, strength: x)
    monkeypatch.setattr(glyphs, "normalize_box", lambda x: x)
    monkeypatch.setattr(glyphs, "glyph_bank", lambda same_shape_case=False: torch.full((3, 784), 0.25))
    monkeypatch.setattr(glyphs, "stroke_glyph_bank", lambda same_shape_case=False: torch.full((5, 784), 0.75))
    torch.manual_seed(0)
    from_strokes = lambda out: (out == 0.75).all(-1)  # noqa: E731
    assert not from_strokes(glyphs.written_glyphs(400, torch.device("cpu"), 0.0)).any()
    assert from_strokes(glyphs.written_glyphs(400, torch.device("cpu"), 1.0)).all()
    share = from_strokes(glyphs.written_glyphs(2000, torch.device("cpu"), 0.5)).float().mean()
    assert 0.45 < share < 0.55


def test_prepare_contrast_makes_the_banks_the_configuration_draws_from(monkeypatch):
    made = []
    monkeypatch.setattr(contrast, "glyph_bank", lambda same_shape_case=False: made.append(("typeset", same_shape_case)))
    monkeypatch.setattr(contrast, "stroke_glyph_bank", lambda same_shape_case=False: made.append(("strokes", same_shape_case)))
    contrast.prepare_contrast(TrainConfig())
    assert made == [("typeset", False)]
    contrast.prepare_contrast(TrainConfig(stroke_glyphs=0.5, same_shape_case=True))
    assert made[1:] == [("typeset", True), ("strokes", True)]
    for no_characters in (TrainConfig(glyph_contrast=0.0), TrainConfig(contrast_weight=0.0)):
        contrast.prepare_contrast(no_characters)
    assert len(made) == 3
