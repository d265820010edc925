"""Train the real 784-1024-10 network on a slice of MNIST, then ask it about digits and noise."""

import pytest
import torch

from inference import predict_with_abstain
from inference.evaluation.metrics import auroc
from inference.evaluation.sets import uniform_noise

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(mnist_model):
    return mnist_model


def test_short_training_answers_digits_and_refuses_noise(trained, mnist_test):
    images, labels = mnist_test.images[:2000], mnist_test.labels[:2000]
    digits = predict_with_abstain(trained, images, mode="median")
    forced_accuracy = (digits.forced_prediction == labels).float().mean().item()
    noise = predict_with_abstain(trained, uniform_noise(2000, seed=1).images, mode="median")
    assert forced_accuracy > 0.85  # chance is 0.1
    assert digits.abstained.float().mean() < 0.1
    assert noise.abstained.float().mean() > 0.5
    assert auroc(digits.score, noise.score) > 0.9
    assert torch.allclose(digits.mean_probs.sum(-1), torch.ones(2000), atol=1e-4)


def test_abstaining_raises_the_accuracy_of_the_answers(trained, mnist_test):
    """Where the rule abstains, it abstains on the digits it would get wrong: accuracy on answered rises."""
    images, labels = mnist_test.images[:5000], mnist_test.labels[:5000]
    result = predict_with_abstain(trained, images, mode="median", threshold=0.5)
    answered = ~result.abstained
    forced = (result.forced_prediction == labels).float().mean().item()
    accepted = (result.prediction[answered] == labels[answered]).float().mean().item()
    assert 0.005 < result.abstained.float().mean() < 0.3, "the rule must abstain on some digits, not most, for this test"
    assert accepted >= forced + 0.005, (accepted, forced)


def test_local_and_weight_sampling_make_the_same_decisions(trained, mnist_test):
    """The two predictive methods draw each input's 100 networks from the same distribution.

    With 100 draws, Monte Carlo noise alone flips a few percent of borderline decisions between two
    seeds of one method, so the test compares like with like: the methods may disagree no more often
    than two seeds of the local method do, within 1.5 points (three binomial standard errors of the
    difference at 3,000 digits). A method that changed 1.5% of decisions or more beyond that would fail.
    """
    images = mnist_test.images[:3000]
    local = predict_with_abstain(trained, images, mode="median", method="local", seed=0)
    again = predict_with_abstain(trained, images, mode="median", method="local", seed=1)
    weights = predict_with_abstain(trained, images, mode="median", method="weights", seed=1)
    across_seeds = (local.prediction != again.prediction).float().mean().item()
    across_methods = (local.prediction != weights.prediction).float().mean().item()
    assert across_methods <= across_seeds + 0.015, (across_methods, across_seeds)
    assert abs(local.abstained.float().mean() - weights.abstained.float().mean()) < 0.015
