import pytest
import torch

from bnn import BNNConfig, TrainedBNN, load_checkpoint
from inference import TrainConfig, TrainingDivergedError, train
from inference.training import ShortRunWarning
from tests.conftest import synthetic


def _fresh(num_data=200):
    torch.manual_seed(123)  # the guide's initial means
    return TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=num_data, init_scale=0.01))


def _params(trained):
    return {k: v.clone() for k, v in trained.guide.state_dict().items()}


@pytest.mark.parametrize("contrast_weight", [0.0, 0.3])
def test_training_fits_separable_data(contrast_weight):
    data = synthetic(200)
    trained = _fresh()
    config = TrainConfig(epochs=15, batch_size=50, lr=1e-2, kl_weight=0.1, contrast_weight=contrast_weight)
    history = train(trained, data, config, test_set=data, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_accuracy"] > 0.9


def test_same_seed_same_result():
    data, config = synthetic(200), TrainConfig(epochs=2, batch_size=32, seed=5)
    a, b = _fresh(), _fresh()
    train(a, data, config, progress=False)
    train(b, data, config, progress=False)
    for (name, x), y in zip(_params(a).items(), _params(b).values(), strict=True):
        assert torch.equal(x, y), name


@pytest.mark.fault("training interrupted between steps")
@pytest.mark.parametrize(
    "options",
    [{"local_reparam": True}, {"local_reparam": False}, {"cosine_lr": True, "contrast_weight": 0.3}, {"mine_glyphs": True}],
)
def test_interrupted_and_resumed_run_matches_a_straight_run(tmp_path, options):
    data = synthetic(200)
    config = TrainConfig(epochs=3, batch_size=32, checkpoint_every=4, **options)
    straight = _fresh()
    train(straight, data, config, progress=False)

    path = tmp_path / "ckpt.pt"
    interrupted = _fresh()
    train(interrupted, data, config, checkpoint=path, progress=False, max_steps=10)  # mid-epoch 2
    torch.manual_seed(999)  # whatever happens to the RNG in between must not matter
    resumed, state = load_checkpoint(path)
    assert state["global_step"] == 10 and state["epoch"] == 1
    history = train(resumed, data, config, checkpoint=path, resume_state=state, progress=False)

    for (name, x), y in zip(_params(straight).items(), _params(resumed).values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name
    assert load_checkpoint(path)[1]["epoch"] == 3
    assert [h["epoch"] for h in history] == [1, 2, 3]  # the epochs before the interruption are kept


@pytest.mark.fault("diverging ELBO (absurd learning rate)")
@pytest.mark.parametrize(
    ("checkpoint_every", "what"),
    [
        # Saved every step: Adam's first step at this rate is finite but absurd (~1e30); only the loss at those
        # parameters, checked before saving them, shows it.
        (1, "the loss at the parameters to be saved is not finite"),
        # Saved only at the epoch's end: the loss itself, at the next step, is the first to show it.
        (0, "the ELBO became (nan|inf|-inf)"),
    ],
)
def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, checkpoint_every, what):
    data = synthetic(200)
    path = tmp_path / "ckpt.pt"
    trained = _fresh()
    train(trained, data, TrainConfig(epochs=1, batch_size=32), checkpoint=path, progress=False)
    good = _params(load_checkpoint(path)[0])
    with pytest.raises(TrainingDivergedError, match=rf"^{what} at epoch 1, step \d+; lower") as caught:
        train(
            trained,
            data,
            TrainConfig(epochs=3, batch_size=32, lr=1e30, scale_lr=1e30, checkpoint_every=checkpoint_every),
            checkpoint=path,
            progress=False,
        )
    assert str(caught.value).endswith(f"The last good checkpoint is {path}.")
    after = _params(load_checkpoint(path)[0])
    assert good.keys() == after.keys()
    assert all(torch.equal(good[k], after[k]) for k in good), "the checkpoint must be the last one with a finite loss"


def test_dataset_size_must_match_the_likelihood_plate():
    with pytest.raises(ValueError, match="sized for 200 examples"):
        train(_fresh(200), synthetic(100), TrainConfig(epochs=1), progress=False)


@pytest.mark.parametrize(
    "kwargs", [{"epochs": 0}, {"epochs": -1}, {"batch_size": 0}, {"lr": 0.0}, {"kl_weight": -1.0}, {"checkpoint_every": -2}]
)
def test_impossible_configurations_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_optimizer_gives_the_means_and_the_scales_their_own_learning_rates():
    from inference.training import make_optimizer

    trained = _fresh()
    optimizer = make_optimizer(trained, TrainConfig(lr=2e-3, scale_lr=5e-2))  # neither is Adam's default
    names = {id(p): n for n, p in trained.guide.named_parameters()}
    by_lr = {group["lr"]: {names[id(p)] for p in group["params"]} for group in optimizer.param_groups}
    assert by_lr[2e-3] and all(n.endswith("_loc") for n in by_lr[2e-3])
    assert by_lr[5e-2] and all(n.endswith("_rho") for n in by_lr[5e-2])
    assert by_lr[2e-3] | by_lr[5e-2] == set(names.values())


def test_a_run_too_short_for_the_scales_to_reach_the_prior_warns():
    import math
    import warnings

    from inference.training.step import check_scale_travel

    trained = _fresh()  # init_scale 0.01, prior 1: each rho must travel softplus^-1(1) - softplus^-1(0.01)
    needed = math.log(math.e - 1) - math.log(math.expm1(0.01))
    steps = 2 * 4  # 2 epochs of 4 steps
    with pytest.warns(ShortRunWarning, match="scale_lr >= "):
        check_scale_travel(trained, TrainConfig(epochs=2, scale_lr=0.99 * needed / steps), 4)
    with pytest.warns(ShortRunWarning):  # a cosine schedule travels half as far
        check_scale_travel(trained, TrainConfig(epochs=2, scale_lr=1.5 * needed / steps, cosine_lr=True), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_scale_travel(trained, TrainConfig(epochs=2, scale_lr=1.01 * needed / steps), 4)
    with pytest.warns(ShortRunWarning, match="scale_lr=0.001 over 1 epochs of 4 steps"):  # the loop checks it
        train(trained, synthetic(200), TrainConfig(epochs=1, batch_size=50, scale_lr=1e-3), progress=False)


def test_row_column_factors_each_travel_to_the_square_root_of_the_prior_scale():
    import math
    import warnings

    from inference.training.step import check_scale_travel

    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=200, init_scale=0.01, row_column_scales=True))
    needed = math.log(math.e - 1) - math.log(math.expm1(0.1))  # softplus^-1(sqrt(1)) - softplus^-1(sqrt(0.01))
    with pytest.warns(ShortRunWarning, match="scale_lr >= "):
        check_scale_travel(trained, TrainConfig(epochs=2, scale_lr=0.99 * needed / 8), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_scale_travel(trained, TrainConfig(epochs=2, scale_lr=1.01 * needed / 8), 4)


def test_cosine_schedule_decays_both_learning_rates_to_zero(tmp_path):
    import math

    path = tmp_path / "c.pt"
    config = TrainConfig(epochs=4, batch_size=50, lr=1e-2, scale_lr=1e-1, cosine_lr=True)
    train(_fresh(), synthetic(200), config, checkpoint=path, progress=False)
    groups = load_checkpoint(path)[1]["optimizer"]["param_groups"]
    # 16 steps; the last runs at (1 + cos(pi * 15 / 16)) / 2 of the base rates.
    factor = 0.5 * (1 + math.cos(math.pi * 15 / 16))
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 * factor, 1e-1 * factor])


@pytest.mark.parametrize("checkpoint_every, saved_at", [(3, [3, 6, 7, 9, 12, 14]), (0, [7, 14])])
def test_the_saved_state_records_the_run_and_checkpoints_fall_where_asked(tmp_path, checkpoint_every, saved_at):
    path, steps = tmp_path / "s.pt", []
    config = TrainConfig(epochs=2, batch_size=30, checkpoint_every=checkpoint_every, seed=4)  # 7 steps per epoch
    history = train(
        _fresh(), synthetic(200), config, checkpoint=path, progress=False, on_checkpoint=steps.append, extra_state={"note": 1}
    )
    assert steps == saved_at  # every k-th step, and every epoch's end
    state = load_checkpoint(path)[1]
    assert state["train_config"] == config.to_dict() and state["note"] == 1
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (2, 0, 14)
    assert [h["epoch"] for h in history] == [1, 2] and all(0 < h["seconds"] < 60 and h["loss"] > 0 for h in history)
    assert state["history"] == history


def test_every_epoch_sees_every_example_once(monkeypatch):
    import inference.training.step as training

    seen = []
    monkeypatch.setattr(training, "random_shift", lambda x, shift: seen.append(x.clone()) or x)
    data = synthetic(200)
    train(_fresh(), data, TrainConfig(epochs=2, batch_size=30, contrast_weight=0.0), progress=False)
    assert [len(x) for x in seen] == [30] * 6 + [20] + [30] * 6 + [20]
    key = torch.randn(784)  # a projection that tells the images apart, to sort them by
    for epoch in (seen[:7], seen[7:]):
        rows = torch.cat(epoch)
        assert torch.equal(rows[torch.argsort(rows @ key)], data.images[torch.argsort(data.images @ key)])
    assert not torch.equal(torch.cat(seen[:7]), torch.cat(seen[7:]))  # reshuffled between epochs


def test_the_contrast_term_makes_the_networks_unsure_off_the_data():
    """On scrambled digits the predictive's entropy nears log 10 (2.30) with the contrast, and stays well below without.

    Measured over seeds 0 and 1: 1.50 and 1.72 nats without; 2.30 and 2.29 with weight 2 (and 1.75 and 1.63
    when the corrupted inputs are drawn but never reach the model).
    """
    from inference.predictive import predict_with_abstain
    from inference.training.contrast import permute_pixels

    data = synthetic(200)
    entropies = {}
    for weight in (0.0, 2.0):
        trained = _fresh()
        train(
            trained, data, TrainConfig(epochs=15, batch_size=50, lr=1e-2, kl_weight=0.1, contrast_weight=weight), progress=False
        )
        scrambled = permute_pixels(synthetic(100, seed=3).images)
        entropies[weight] = predict_with_abstain(trained, scrambled, 20, mode="median").entropy.mean().item()
    assert entropies[2.0] > 2.2 and entropies[0.0] < 2.0


def test_local_reparameterisation_is_used_only_when_asked(monkeypatch):
    import inference.training.step as training

    made = []
    real = training.LocalReparameterization
    monkeypatch.setattr(training, "LocalReparameterization", lambda *args: made.append(args) or real(*args))
    data = synthetic(200)
    train(_fresh(), data, TrainConfig(epochs=1, batch_size=100, local_reparam=False), progress=False)
    assert made == []
    train(_fresh(), data, TrainConfig(epochs=1, batch_size=100, local_reparam=True), progress=False)
    assert len(made) == 2  # one per step


@pytest.mark.parametrize("asked", [True, False])
@pytest.mark.parametrize("hardware", [True, False])
def test_the_variance_is_bf16_only_when_asked_on_bf16_hardware(monkeypatch, asked, hardware):
    import bnn.layers
    import inference.training.step as training

    dtypes = []
    real = bnn.layers.linear
    monkeypatch.setattr(training, "has_bf16_units", lambda device: hardware)
    monkeypatch.setattr(bnn.layers, "linear", lambda *a, **k: dtypes.append(k.get("variance_dtype")) or real(*a, **k))
    config = TrainConfig(epochs=1, batch_size=100, local_reparam=True, bf16_variance=asked)  # bf16 is for the variance's product
    train(_fresh(), synthetic(200), config, progress=False)
    assert len(dtypes) == 4  # two layers, two steps
    assert set(dtypes) == {torch.bfloat16 if asked and hardware else None}


def test_bf16_hardware_is_probed_without_error():
    from inference.training.step import has_bf16_units

    assert isinstance(has_bf16_units(torch.device("cpu")), bool)
    assert has_bf16_units(torch.device("meta")) is False


def test_an_epoch_s_loss_is_the_mean_step_loss_per_example(monkeypatch):
    import inference.training.loop as training

    losses = []
    real = training.minibatch_loss
    monkeypatch.setattr(training, "minibatch_loss", lambda *a, **k: losses.append(real(*a, **k)) or losses[-1])
    history = train(_fresh(), synthetic(200), TrainConfig(epochs=1, batch_size=50), progress=False)
    assert history[0]["loss"] == pytest.approx(sum(x.item() for x in losses) / len(losses) / 200)


def test_divergence_without_a_checkpoint_says_what_became_infinite():
    # Adam's first step at this rate is finite; the loss at the parameters it reaches, on the second, is not.
    with pytest.raises(TrainingDivergedError, match=r"^the ELBO became (nan|inf|-inf) at epoch 1, step 2; lower") as caught:
        train(_fresh(), synthetic(200), TrainConfig(epochs=2, batch_size=32, lr=1e30, scale_lr=1e30), progress=False)
    assert "checkpoint" not in str(caught.value)


def test_the_noise_seed_is_the_seed_for_a_fresh_run_and_distinct_for_every_epoch_and_rank():
    from inference.training.step import noise_seed

    assert noise_seed(5) == 5 == noise_seed(5, epoch=0, rank=0)
    seeds = [noise_seed(5, epoch, rank) for epoch in range(40) for rank in range(8)]
    assert len(set(seeds)) == len(seeds) and len({noise_seed(s) for s in range(10)}) == 10


def test_parameters_that_are_not_finite_are_never_called_fit_to_save():
    from inference.training.step import finite_at_parameters

    trained, data, config = _fresh(), synthetic(200), TrainConfig(batch_size=32)
    assert finite_at_parameters(trained, data.images, data.labels, config)
    with torch.no_grad():
        next(trained.guide.parameters()).view(-1)[0] = float("nan")
    assert not finite_at_parameters(trained, data.images, data.labels, config)
    few = synthetic(10)  # fewer images than a batch: checked on all of them
    assert finite_at_parameters(_fresh(), few.images, few.labels, config)
