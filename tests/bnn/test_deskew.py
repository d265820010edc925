import pytest
import torch

from bnn import BNNConfig, TrainedBNN
from bnn.deskew import MAX_SHEAR, deskew, slant
from bnn.vae import VAE, VAEConfig
from tests.conftest import centres_of_mass


def slanted_bar(shear: float, top: int = 6, bottom: int = 22, width: float = 2.0) -> torch.Tensor:
    """``(1, 784)``: a bar whose column moves ``shear`` pixels per row, drawn with soft edges (anti-aliased)."""
    rows = torch.arange(28.0)[:, None]
    cols = torch.arange(28.0)[None, :]
    centre = 14.0 + shear * (rows - 14.0)
    ink = (1 - ((cols - centre).abs() - width / 2).clamp(0, 1)) * ((rows >= top) & (rows <= bottom))
    return ink.reshape(1, 784)


@pytest.mark.parametrize("shear", [-0.6, -0.3, 0.0, 0.25, 0.5])
def test_the_slant_is_the_regression_of_column_on_row(shear):
    measured, centre_y = slant(slanted_bar(shear))
    assert measured.item() == pytest.approx(shear, abs=0.02)
    assert centre_y.item() == pytest.approx(14.0, abs=1e-4)
    faint, faint_centre = slant(slanted_bar(shear) * 1e-3)  # the ink's shape, not its darkness (total ink under 1)
    assert faint.item() == pytest.approx(measured.item(), abs=1e-4) and faint_centre.item() == pytest.approx(14.0, abs=1e-3)


@pytest.mark.parametrize("shear", [-0.6, 0.3, 0.5])
def test_a_deskewed_bar_stands_upright_with_its_ink_and_rows_kept(shear):
    bar = slanted_bar(shear)
    upright = deskew(bar)
    assert slant(upright)[0].abs().item() < 0.02
    assert upright.sum().item() == pytest.approx(bar.sum().item(), rel=1e-5)  # no ink left the frame
    # Every row keeps its ink, moved sideways only, about the ink's centre of mass, which stays where it was.
    assert torch.allclose(upright.view(28, 28).sum(1), bar.view(28, 28).sum(1), atol=1e-5)
    assert torch.allclose(centres_of_mass(upright), centres_of_mass(bar), atol=0.02)


def test_an_upright_image_and_a_blank_one_are_unchanged():
    upright = slanted_bar(0.0)
    assert torch.allclose(deskew(upright), upright, atol=1e-6)
    blank = torch.zeros(3, 784)
    assert torch.equal(deskew(blank), blank)
    assert deskew(torch.zeros(0, 784)).shape == (0, 784)


def test_a_shape_wider_than_tall_is_sheared_at_most_max_shear():
    dash = torch.zeros(1, 28, 28)
    dash[0, 14, 4:24] = 1.0
    dash[0, 13, 4] = dash[0, 15, 23] = 0.5  # a faint slant on a flat shape: cov / var is large
    shear, _ = slant(dash.view(1, 784), max_shear=100.0)
    assert shear.abs().item() > MAX_SHEAR
    assert slant(dash.view(1, 784))[0].abs().item() == pytest.approx(MAX_SHEAR)
    assert torch.isfinite(deskew(dash.view(1, 784))).all()


def test_deskew_works_in_chunks_and_checks_its_shape(monkeypatch):
    import bnn.deskew as module

    images = torch.rand(10, 784)
    whole = deskew(images)
    monkeypatch.setattr(module, "CHUNK", 3)
    assert torch.allclose(deskew(images), whole, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 784\)"):
        deskew(torch.rand(2, 28, 28))


def test_a_deskewing_model_reads_what_a_plain_one_reads_of_the_deskewed_images():
    torch.manual_seed(0)
    plain = TrainedBNN.untrained(BNNConfig(hidden_dim=16), seed=0)
    deskewing = TrainedBNN.untrained(BNNConfig(hidden_dim=16, deskew=True), seed=0)
    deskewing.guide.load_state_dict(plain.guide.state_dict())
    images = torch.cat([slanted_bar(0.4), slanted_bar(-0.3), torch.rand(2, 784)])
    params = {k: v.loc.detach().unsqueeze(0) for k, v in plain.guide.posterior().items()}
    expected = plain.model.sampled_logits(deskew(images), params)
    assert torch.allclose(deskewing.model.sampled_logits(images, params), expected, atol=1e-6)
    assert not torch.allclose(plain.model.sampled_logits(images, params), expected, atol=1e-3)


def test_a_deskewing_density_scores_the_deskewed_images():
    torch.manual_seed(0)
    plain = VAE(VAEConfig(hidden_dim=16, latent_dim=3))
    deskewing = VAE(VAEConfig(hidden_dim=16, latent_dim=3, deskew=True))
    deskewing.load_state_dict(plain.state_dict())
    images = torch.cat([slanted_bar(0.4), slanted_bar(-0.3)])
    noise = torch.randn(4, 3)
    assert torch.allclose(deskewing.elbo(images, 4, noise=noise), plain.elbo(deskew(images), 4, noise=noise), atol=1e-4)


def test_a_deskewing_density_trains_on_each_batch_deskewed_once(monkeypatch):
    import pyro
    from pyro import poutine

    import bnn.vae
    from inference.calibration import train_vae
    from inference.data import ImageSet

    vae = VAE(VAEConfig(hidden_dim=16, latent_dim=3, deskew=True))
    images = torch.cat([slanted_bar(0.4), slanted_bar(-0.3)])
    pyro.set_rng_seed(0)
    raw = poutine.trace(vae.guide).get_trace(images)
    ran = poutine.trace(poutine.replay(vae.model, trace=raw)).get_trace(images)
    prepared = poutine.trace(poutine.replay(vae.model, trace=raw)).get_trace(deskew(images), prepared=True)
    ran.compute_log_prob(), prepared.compute_log_prob()
    assert torch.allclose(ran.nodes["x"]["log_prob"], prepared.nodes["x"]["log_prob"])  # the guide's z, both ways
    assert torch.allclose(raw.nodes["z"]["fn"].base_dist.loc, vae.encode(deskew(images))[0])  # q(z | deskewed x)
    calls = []
    monkeypatch.setattr(bnn.vae, "deskew", lambda x: calls.append(len(x)) or deskew(x))
    data = ImageSet("bars", images.repeat(5, 1), torch.zeros(10, dtype=torch.long))
    train_vae(data, epochs=1, batch_size=4, progress=False, config=VAEConfig(hidden_dim=16, latent_dim=3, deskew=True))
    assert calls == [4, 4, 2]  # one deskew per batch, for the guide and the model together


def test_the_training_model_reads_its_digits_and_contrast_inputs_deskewed():
    import pyro
    from pyro import poutine

    plain = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=10), seed=0)
    deskewing = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=10, deskew=True), seed=0)
    deskewing.guide.load_state_dict(plain.guide.state_dict())
    x, contrast = torch.cat([slanted_bar(0.4), slanted_bar(-0.3)]), torch.cat([slanted_bar(0.6), slanted_bar(0.2)])
    y = torch.tensor([3, 5])
    pyro.set_rng_seed(1)
    weights = poutine.trace(plain.guide).get_trace()
    ran = poutine.trace(poutine.replay(deskewing.model, trace=weights)).get_trace(x, y, contrast, 0.5)
    expected = poutine.trace(poutine.replay(plain.model, trace=weights)).get_trace(deskew(x), y, deskew(contrast), 0.5)
    undeskewed = poutine.trace(poutine.replay(plain.model, trace=weights)).get_trace(x, y, contrast, 0.5)
    for trace in (ran, expected, undeskewed):
        trace.compute_log_prob()
    for site in ("obs", "contrast_prior"):
        assert torch.allclose(ran.nodes[site]["log_prob"], expected.nodes[site]["log_prob"], atol=1e-5), site
        assert not torch.allclose(ran.nodes[site]["log_prob"], undeskewed.nodes[site]["log_prob"], atol=1e-3), site


def test_a_deskewing_model_calibrates_a_deskewing_density_that_a_checkpoint_keeps(tmp_path):
    from bnn import load_model, save_checkpoint
    from inference import CalibrationConfig, TrainConfig, calibrate, predict_with_abstain, train
    from inference.data import ImageSet
    from tests.conftest import synthetic

    data = synthetic(700, seed=3)
    fit, held_out = ImageSet("fit", data.images[:400], data.labels[:400]), ImageSet("held", data.images[400:], data.labels[400:])
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=400, init_scale=0.01, deskew=True), seed=0)
    train(trained, fit, TrainConfig(epochs=2, batch_size=100, lr=1e-2), progress=False)
    gate = CalibrationConfig(vae_epochs=1, vae_hidden_dim=16, vae_latent_dim=3)
    calibrate(trained, held_out, fit, gate, num_samples=10, progress=False)
    assert trained.calibration.vae.config.deskew
    loaded = load_model(save_checkpoint(tmp_path / "d.pt", trained))
    assert loaded.config.deskew and loaded.calibration.vae.config.deskew
    x = synthetic(20, seed=4).images
    before, after = predict_with_abstain(trained, x, 10), predict_with_abstain(loaded, x, 10)
    assert torch.equal(before.prediction, after.prediction) and torch.equal(before.density, after.density)


def test_deskew_takes_any_layout_and_float_dtype():
    images = torch.cat([slanted_bar(0.4), slanted_bar(-0.2)])
    expected = deskew(images)
    strided = torch.zeros(784, 2)
    strided[:, 0], strided[:, 1] = images[0], images[1]
    assert not strided.t().is_contiguous()
    assert torch.allclose(deskew(strided.t()), expected, atol=1e-6)
    doubled = deskew(images.double())
    assert doubled.dtype == torch.float64 and torch.allclose(doubled.float(), expected, atol=1e-5)


def test_configs_that_deskew_what_is_not_a_28x28_image_are_refused():
    with pytest.raises(ValueError, match="deskew needs 28x28 images"):
        BNNConfig(input_dim=100, deskew=True)
    with pytest.raises(ValueError, match="deskew needs 28x28 images"):
        VAEConfig(input_dim=100, deskew=True)
    assert not BNNConfig(input_dim=100).deskew
