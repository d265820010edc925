"""Train the real 784-1024-10 network on a slice of MNIST, then ask it about digits and noise."""

import pytest
import torch

from bnn import BNNConfig, TrainedBNN
from inference import TrainConfig, predict_with_abstain, train
from inference.data import ImageSet, uniform_noise
from inference.evaluation.metrics import auroc

pytestmark = pytest.mark.slow


def test_short_training_answers_digits_and_refuses_noise(mnist_train, mnist_test):
    n = 10_000
    subset = ImageSet("MNIST-train-10k", mnist_train.images[:n], mnist_train.labels[:n])
    trained = TrainedBNN.untrained(BNNConfig(num_data=n))
    # A larger scale learning rate lets the posterior widen within this short run.
    config = TrainConfig(epochs=8, batch_size=128, lr=1e-3, scale_lr=3e-2, kl_weight=0.1, seed=0)
    train(trained, subset, config, progress=False)

    held_out = mnist_test.images[:2000], mnist_test.labels[:2000]
    digits = predict_with_abstain(trained, held_out[0])
    forced_accuracy = (digits.forced_prediction == held_out[1]).float().mean().item()
    accepted = ~digits.abstained
    accepted_accuracy = (digits.prediction[accepted] == held_out[1][accepted]).float().mean().item()
    noise = predict_with_abstain(trained, uniform_noise(2000, seed=1).images)
    refused_noise = noise.abstained.float().mean().item()

    print(
        f"forced {forced_accuracy:.3f}, abstained {1 - accepted.float().mean().item():.3f}, "
        f"accepted accuracy {accepted_accuracy:.3f}, noise refused {refused_noise:.3f}"
    )
    assert forced_accuracy > 0.85  # chance is 0.1
    assert accepted_accuracy >= forced_accuracy - 0.01
    assert digits.abstained.float().mean() < 0.1
    assert refused_noise > 0.5
    assert auroc(digits.score, noise.score) > 0.9
    assert torch.all(digits.mean_probs.sum(-1).sub(1).abs() < 1e-4)
