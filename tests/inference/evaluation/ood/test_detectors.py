"""Each detector on data whose answer is known."""

import pytest
import torch
from pytorch_ood.detector import TemperatureScaling
from sklearn.covariance import LedoitWolf
from torch import nn

from inference.data import ImageSet
from inference.evaluation.metrics import auroc
from inference.evaluation.ood.adversarial import bim, fgsm
from inference.evaluation.ood.classifiers import MLP, batched, fit_temperature
from inference.evaluation.ood.detectors import (
    KNN,
    ODIN,
    BayesianDetector,
    Energy,
    FeatureGMM,
    Mahalanobis,
    MaxSoftmax,
    TemperatureScaled,
    VAEElbo,
    ViM,
)
from inference.evaluation.sets import load_notmnist
from inference.training.classifier import CNN, train_classifier
from tests.conftest import need, synthetic


class Identity(nn.Module):
    """Features are the first 5 pixels; logits are the first 10 pixels (times 10); ``out`` maps features to logits."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(5, 10)

    def features(self, x):
        return x[:, :5]

    def forward(self, x):
        return x[:, :10] * 10


def _gaussian_classes(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.zeros(n, 784)
    images[:, :5] = torch.randn(n, 5, generator=g) * 0.05 + labels[:, None] * 0.5 + 0.2
    return ImageSet("gauss", images, labels)


def test_feature_detectors_rank_far_points_below_near_ones():
    data = _gaussian_classes()
    near, far = _gaussian_classes(100, seed=1).images, torch.rand(100, 784)
    for detector in (
        Mahalanobis(Identity()),
        FeatureGMM(Identity(), components=2, max_fit=400),
        ViM(Identity(), dim=2),
    ):
        detector.fit(data)
        assert auroc(detector.score(near), detector.score(far)) > 0.99, detector


def test_temperature_recovers_the_temperature_that_generated_the_labels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20_000, 10, generator=g) * 3
    labels = torch.distributions.Categorical(logits=logits / 2.0).sample()
    images = torch.zeros(20_000, 784)
    images[:, :10] = logits / 10  # Identity's forward multiplies by 10
    assert fit_temperature(Identity(), ImageSet("t", images, labels)) == pytest.approx(2.0, rel=0.05)


def test_max_softmax_and_temperature_share_predictions():
    net = Identity()
    x = torch.rand(50, 784)
    plain = MaxSoftmax(net)
    scaled = TemperatureScaled(net)
    scaled.temperature = 3.0
    assert torch.equal(plain.predict(x)[1], scaled.predict(x)[1])
    assert (scaled.score(x) <= plain.score(x) + 1e-6).all()  # T > 1 softens


def test_classifiers_learn_separable_data():
    data = synthetic(300)
    for net in (MLP(hidden_dim=32), CNN()):
        train_classifier(net, data, epochs=15, batch_size=50, lr=3e-3, progress=False)
        assert (net(data.images).argmax(-1) == data.labels).float().mean() > 0.9


def test_attacks_stay_in_the_budget_and_hurt_the_classifier():
    data = synthetic(200)
    net = train_classifier(MLP(hidden_dim=32), data, epochs=15, batch_size=50, lr=3e-3, progress=False)
    for attack in (fgsm, bim):
        adv = attack(net, data.images, data.labels, eps=0.2)
        assert (adv - data.images).abs().max() <= 0.2 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        assert nn.functional.cross_entropy(net(adv), data.labels) > nn.functional.cross_entropy(net(data.images), data.labels)


def test_vae_elbo_is_a_per_image_bound_and_prefers_its_training_data():
    data = synthetic(300)
    vae = VAEElbo(epochs=20, num_particles=4).fit(data)
    inside, outside = vae.score(data.images), vae.score(torch.rand(300, 784))
    assert inside.shape == (300,) and (inside < 0).all()  # log-likelihood of 784 Bernoulli pixels
    assert auroc(inside, outside) > 0.95


def test_bayesian_scores_agree_with_the_rule(tiny):
    x = torch.rand(20, 784)
    median = BayesianDetector(tiny, "max_median", num_samples=10).score(x)
    from inference import predict_with_abstain

    assert torch.equal(median, predict_with_abstain(tiny, x, 10, mode="median").score)
    entropy = -BayesianDetector(tiny, "entropy", num_samples=10).score(x)
    mutual = -BayesianDetector(tiny, "mutual_information", num_samples=10).score(x)
    assert (mutual >= -1e-5).all() and (mutual <= entropy + 1e-5).all()  # 0 <= I <= H


def test_knn_ranks_features_pointing_elsewhere_below_the_training_directions():
    data = _gaussian_classes()
    near = _gaussian_classes(100, seed=1).images
    far = torch.zeros(100, 784)
    far[:, 0] = torch.rand(100) + 0.5  # the features' length is normalised away: only the direction differs
    detector = KNN(Identity(), k=10).fit(data)
    assert auroc(detector.score(near), detector.score(far)) > 0.99


def test_energy_is_the_logsumexp_of_the_logits():
    x = torch.rand(30, 784)
    expected = torch.logsumexp(x[:, :10] * 10 / 2.0, -1) * 2.0
    assert torch.allclose(Energy(Identity(), temperature=2.0).score(x), expected, atol=1e-5)


def test_odin_without_a_step_is_max_softmax_at_its_temperature_and_its_step_raises_the_answer():
    net = train_classifier(MLP(hidden_dim=32), synthetic(300), epochs=10, batch_size=50, lr=3e-3, progress=False)
    net.zero_grad(set_to_none=True)
    x = synthetic(50, seed=1).images
    at_t = torch.softmax(batched(net, x) / 10.0, -1).max(-1).values
    assert torch.allclose(ODIN(net, temperature=10.0, eps=0.0).score(x), at_t, atol=1e-6)
    assert (ODIN(net, temperature=10.0, eps=0.01).score(x) >= at_t - 1e-6).all()  # the step lowers its own answer's loss
    assert all(p.grad is None for p in net.parameters())  # only the input's gradient was taken


def test_max_softmax_gives_the_hand_written_figures():
    x = torch.rand(50, 784)
    expected = torch.softmax(x[:, :10] * 10 / 3.0, -1).max(-1).values
    assert torch.allclose(MaxSoftmax(Identity(), temperature=3.0).score(x), expected, atol=1e-6)


def test_temperature_fit_reaches_a_lower_nll_than_pytorch_oods():
    """Why the fit stays this project's: pytorch-ood's 50 fixed L-BFGS steps stop short of the optimum."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5_000, 10, generator=g) * 3
    labels = torch.distributions.Categorical(logits=logits / 2.0).sample()
    images = torch.zeros(5_000, 784)
    images[:, :10] = logits / 10
    ours = fit_temperature(Identity(), ImageSet("t", images, labels))
    theirs = TemperatureScaling(None).fit_logits(logits, labels).t.item()

    def nll(t):
        return nn.functional.cross_entropy(logits / t, labels).item()

    assert nll(ours) < nll(theirs) and abs(ours - 2.0) < abs(theirs - 2.0)


def _ledoit_wolf_mahalanobis(features, labels, test_features):
    """The project's hand-written Mahalanobis before pytorch-ood: a Ledoit-Wolf shared precision."""
    features, test_features = features.double(), test_features.double()
    means = torch.stack([features[labels == c].mean(0) for c in range(10)])
    precision = torch.from_numpy(LedoitWolf(assume_centered=True).fit((features - means[labels]).numpy()).precision_)
    diff = test_features[:, None, :] - means[None]
    return -((diff @ precision) * diff).sum(-1).min(-1).values


def test_mahalanobis_on_pytorch_ood_gives_the_hand_written_figures(mnist_train, mnist_test, data_dir):
    letters = need(load_notmnist, data_dir).images
    train = mnist_train.head(10_000)
    net = train_classifier(MLP(hidden_dim=256), train, epochs=1, progress=False)
    detector = Mahalanobis(net).fit(train)
    digits = mnist_test.images[:2_000]
    features = batched(net.features, train.images)

    def before(x):
        return _ledoit_wolf_mahalanobis(features, train.labels, batched(net.features, x))

    new, old = detector.score(digits), before(digits)
    ranks = torch.stack([new.argsort().argsort(), old.argsort().argsort()]).double()
    assert torch.corrcoef(ranks)[0, 1] > 0.99
    assert auroc(new, detector.score(letters)) == pytest.approx(auroc(old, before(letters)), abs=0.01)
