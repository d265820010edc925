import pytest
import torch
import torch.nn.functional as F
from pyro import poutine

from bnn import BNNConfig, TrainedBNN
from bnn.model import BayesianMLP
from inference import TrainConfig, train
from inference.training import minibatch_loss
from inference.training.teacher import TEACHER_CHANNELS, TEACHER_HIDDEN, distilled_targets, teacher_labels, train_teacher
from tests.conftest import synthetic


def test_the_teacher_reads_what_it_was_trained_on():
    data = synthetic(300)
    teacher = train_teacher(data.images, data.labels, epochs=3, seed=0)
    with torch.no_grad():
        assert (teacher(data.images).argmax(-1) == data.labels).float().mean() > 0.95
    assert teacher(torch.rand(4, 784)).shape == (4, 10)
    assert teacher.out.in_features == TEACHER_HIDDEN and teacher.conv[3].out_channels == TEACHER_CHANNELS[1]


def test_targets_mix_the_hard_label_and_the_softened_teacher():
    data = synthetic(300)
    half = distilled_targets(data.images, data.labels, 0.5, 4.0, epochs=3, seed=0)
    soft = distilled_targets(data.images, data.labels, 1.0, 4.0, epochs=3, seed=0)
    assert half.shape == (300, 10)
    assert torch.allclose(half.sum(-1), torch.ones(300))
    # the same seed trains the same teacher: half the label is the hard one, half the teacher's
    assert torch.allclose(half, 0.5 * F.one_hot(data.labels, 10) + 0.5 * soft, atol=1e-6)
    assert (soft.argmax(-1) == data.labels).float().mean() > 0.95
    assert soft.max(-1).values.max() < 0.99  # softened: a temperature of 4 leaves mass on the other classes


def test_a_higher_temperature_softens_more():
    data = synthetic(200)
    entropy = [
        torch.special.entr(distilled_targets(data.images, data.labels, 1.0, t, epochs=2, seed=0)).sum(-1).mean()
        for t in (1.0, 4.0)
    ]
    assert entropy[1] > entropy[0]


def test_the_teacher_leaves_the_global_random_state_alone():
    data = synthetic(100)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    distilled_targets(data.images, data.labels, 0.5, 4.0, epochs=1, seed=3)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("distill, temperature", [(0.0, 4.0), (1.5, 4.0), (0.5, 0.0), (0.5, -1.0)])
def test_impossible_settings_are_rejected(distill, temperature):
    data = synthetic(50)
    with pytest.raises(ValueError):
        distilled_targets(data.images, data.labels, distill, temperature, epochs=1, seed=0)


def test_no_teacher_unless_asked():
    data = synthetic(50)
    assert teacher_labels(data.images, data.labels, TrainConfig(), 10) is None


def test_one_hot_label_distributions_score_as_the_hard_labels():
    """The soft likelihood is the expected Categorical log-likelihood: at one-hot targets it is the hard one."""
    model = BayesianMLP(BNNConfig(hidden_dim=8, num_data=1000))
    x, y = torch.rand(10, 784), torch.randint(0, 10, (10,))
    torch.manual_seed(0)
    hard = poutine.trace(model).get_trace(x, y)
    torch.manual_seed(0)
    soft = poutine.trace(model).get_trace(x, F.one_hot(y, 10).float())
    hard.compute_log_prob()
    soft.compute_log_prob()
    assert soft.nodes["obs"]["scale"] == pytest.approx(100.0)
    assert torch.allclose(soft.nodes["obs"]["log_prob_sum"], hard.nodes["obs"]["log_prob_sum"])


def test_soft_labels_enter_the_minibatch_loss():
    torch.manual_seed(0)
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100))
    data, config = synthetic(100), TrainConfig(contrast_weight=0.3)
    losses = []
    for soft in (None, F.one_hot(data.labels, 10).float(), torch.full((100, 10), 0.1)):
        torch.manual_seed(1)
        losses.append(minibatch_loss(trained, data.images, data.labels, config, soft_labels=soft).item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert losses[2] != pytest.approx(losses[0], abs=0.5)  # the same draws: only the labels differ


def test_distilled_training_fits_and_is_reproducible():
    data = synthetic(200)
    config = TrainConfig(epochs=12, batch_size=50, lr=1e-2, distill=0.5, teacher_epochs=2)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=200, init_scale=0.01))
        history = train(trained, data, config, test_set=data, progress=False)
        runs.append({k: v.clone() for k, v in trained.guide.state_dict().items()})
    assert history[-1]["test_accuracy"] > 0.9
    for name, value in runs[0].items():
        assert torch.equal(value, runs[1][name]), name


def test_the_lightning_module_serves_the_same_soft_labels_with_each_digit(tmp_path):
    from inference.training.lightning import SVIModule

    data = synthetic(100)
    config = TrainConfig(batch_size=20, distill=0.5, teacher_epochs=1)
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100))
    module = SVIModule(trained, data, config, tmp_path / "bnn.pt")
    x, y, soft = next(iter(module.train_dataloader()))
    expected = teacher_labels(data.images, data.labels, config, 10)
    rows = [int(torch.nonzero((data.images == image).all(-1))[0]) for image in x]
    assert torch.equal(y, data.labels[rows])
    assert torch.allclose(soft, expected[rows])
