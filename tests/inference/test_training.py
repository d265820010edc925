import pytest
import torch

from bnn import BNNConfig, TrainedBNN, load_checkpoint
from inference import TrainConfig, TrainingDivergedError, train
from tests.conftest import synthetic


def _fresh(num_data=200):
    torch.manual_seed(123)  # the guide's initial means
    return TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=num_data, init_scale=0.01))


def _params(trained):
    return {k: v.clone() for k, v in trained.guide.state_dict().items()}


def test_training_fits_separable_data():
    data = synthetic(200)
    trained = _fresh()
    history = train(trained, data, TrainConfig(epochs=15, batch_size=50, lr=1e-2, kl_weight=0.1), test_set=data, progress=False)
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
    "options", [{"local_reparam": True}, {"local_reparam": False}, {"cosine_lr": True, "contrast_weight": 0.3}]
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
    train(resumed, data, config, checkpoint=path, resume_state=state, progress=False)

    for (name, x), y in zip(_params(straight).items(), _params(resumed).values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name
    assert load_checkpoint(path)[1]["epoch"] == 3


@pytest.mark.fault("diverging ELBO (absurd learning rate)")
def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    data = synthetic(200)
    path = tmp_path / "ckpt.pt"
    trained = _fresh()
    train(trained, data, TrainConfig(epochs=1, batch_size=32), checkpoint=path, progress=False)
    good = _params(load_checkpoint(path)[0])
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        train(
            trained,
            data,
            TrainConfig(epochs=3, batch_size=32, lr=1e30, scale_lr=1e30, checkpoint_every=1),
            checkpoint=path,
            progress=False,
        )
    after = _params(load_checkpoint(path)[0])
    # Adam's first step at this rate is finite but absurd (~1e30); only the loss at those parameters shows it.
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
    optimizer = make_optimizer(trained, TrainConfig(lr=1e-3, scale_lr=5e-2))
    names = {id(p): n for n, p in trained.guide.named_parameters()}
    by_lr = {group["lr"]: {names[id(p)] for p in group["params"]} for group in optimizer.param_groups}
    assert by_lr[1e-3] and all(n.endswith("_loc") for n in by_lr[1e-3])
    assert by_lr[5e-2] and all(n.endswith("_rho") for n in by_lr[5e-2])
    assert by_lr[1e-3] | by_lr[5e-2] == set(names.values())


def test_cosine_schedule_decays_both_learning_rates_to_zero(tmp_path):
    import math

    path = tmp_path / "c.pt"
    config = TrainConfig(epochs=4, batch_size=50, lr=1e-2, scale_lr=1e-1, cosine_lr=True)
    train(_fresh(), synthetic(200), config, checkpoint=path, progress=False)
    groups = load_checkpoint(path)[1]["optimizer"]["param_groups"]
    # 16 steps; the last runs at (1 + cos(pi * 15 / 16)) / 2 of the base rates.
    factor = 0.5 * (1 + math.cos(math.pi * 15 / 16))
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 * factor, 1e-1 * factor])
