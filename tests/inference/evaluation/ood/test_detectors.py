"""Each detector on data whose answer is known."""

import pytest
import torch
from torch import nn

from inference.data import ImageSet
from inference.evaluation.metrics import auroc
from inference.evaluation.ood.adversarial import bim, fgsm
from inference.evaluation.ood.classifiers import CNN, MLP, fit_temperature, train_classifier
from inference.evaluation.ood.detectors import BayesianDetector, FeatureGMM, Mahalanobis, MaxSoftmax, TemperatureScaled, VAEElbo
from tests.conftest import synthetic


class Identity(nn.Module):
    """Features are the first 5 pixels; logits are the first 10 pixels."""

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
    for detector in (Mahalanobis(Identity()), FeatureGMM(Identity(), components=2, max_fit=400)):
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
