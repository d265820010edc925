"""Shared fixtures. Tests that need MNIST skip when it is missing, unless BNN_REQUIRE_DATA=1 (CI)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyro
import pytest
import torch

from bnn import BNNConfig, TrainedBNN
from inference.data import DatasetNotFoundError, ImageSet, load_mnist, resolve_data_dir

REQUIRE_DATA = os.environ.get("BNN_REQUIRE_DATA") == "1"
REQUIRE_BROWSER = os.environ.get("BNN_REQUIRE_BROWSER") == "1"


def skip_or_fail(why: str):
    """Skip a test whose data is missing, or fail it under BNN_REQUIRE_DATA=1 (CI)."""
    if REQUIRE_DATA:
        pytest.fail(f"BNN_REQUIRE_DATA=1 but the data is missing: {why}")
    pytest.skip(f"data missing: {why}")


def need(loader, *args):
    """Load a dataset or skip the test with the loader's message (fail instead under BNN_REQUIRE_DATA=1)."""
    try:
        return loader(*args)
    except DatasetNotFoundError as err:
        skip_or_fail(str(err))


def need_chromium() -> str:
    """The system's Chromium, with Playwright to drive it, or skip the test (fail instead under BNN_REQUIRE_BROWSER=1)."""
    from inference.evaluation.serving import find_chromium

    chromium = find_chromium()
    if chromium is None:
        why = "no Chromium found (Debian: apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"BNN_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    pytest.importorskip("playwright.sync_api")
    return chromium


def pytest_sessionfinish(session, exitstatus):
    """For scripts/reliability.py: write what the property tests fed the API where $BNN_TALLY_FILE says."""
    path = os.environ.get("BNN_TALLY_FILE")
    if path:
        from tests.tally import TALLY

        Path(path).write_text(json.dumps([[what, outcome, count] for (what, outcome), count in TALLY.items()]))


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield


@pytest.fixture(scope="session")
def data_dir():
    return resolve_data_dir()


@pytest.fixture(scope="session")
def mnist_train(data_dir) -> ImageSet:
    return need(load_mnist, True, data_dir, False)


@pytest.fixture(scope="session")
def mnist_test(data_dir) -> ImageSet:
    return need(load_mnist, False, data_dir, False)


@pytest.fixture
def tiny() -> TrainedBNN:
    """A small untrained model: 784 -> 16 -> 10."""
    torch.manual_seed(0)
    return TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100, init_scale=0.1))


def centres_of_mass(images: torch.Tensor) -> torch.Tensor:
    """``(N, 784)`` images -> ``(N, 2)``: each image's centre of mass, (row, column) in pixels."""
    img = images.view(-1, 28, 28)
    coords = torch.arange(28.0)
    mass = img.sum((1, 2))
    return torch.stack([(img.sum(2) * coords).sum(-1), (img.sum(1) * coords).sum(-1)], -1) / mass[:, None]


def synthetic(num: int = 200, seed: int = 0) -> ImageSet:
    """Separable fake digits: class k lights up pixel block k."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (num,), generator=g)
    images = torch.rand(num, 784, generator=g) * 0.1
    for k in range(10):
        images[labels == k, k * 70 : k * 70 + 70] = 1.0
    return ImageSet("synthetic", images, labels)


def trained_on_synthetic(
    num_fit: int, num_held_out: int, hidden_dim: int, num_samples: int, vae_epochs: int, data_seed: int = 0
) -> TrainedBNN:
    """A small network that really answers: trained on separable fake digits, calibrated on held-out ones."""
    from inference import CalibrationConfig, TrainConfig, calibrate, train

    data = synthetic(num_fit + num_held_out, seed=data_seed)
    fit = ImageSet("fit", data.images[:num_fit], data.labels[:num_fit])
    held_out = ImageSet("held", data.images[num_fit:], data.labels[num_fit:])
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=hidden_dim, num_data=num_fit, init_scale=0.01), seed=0)
    train(trained, fit, TrainConfig(epochs=10, batch_size=100, lr=1e-2), progress=False)
    calibrate(trained, held_out, fit, CalibrationConfig(vae_epochs=vae_epochs), num_samples=num_samples, progress=False)
    return trained


@pytest.fixture(scope="session")
def mnist_model(mnist_train) -> TrainedBNN:
    """The real 784-1024-10 network after a short run on 9,000 MNIST digits, calibrated on 1,000 more."""
    from inference import CalibrationConfig, TrainConfig, calibrate, train

    fit = ImageSet("MNIST-train-9k", mnist_train.images[:9000], mnist_train.labels[:9000])
    held_out = ImageSet("MNIST-held-out-1k", mnist_train.images[9000:10_000], mnist_train.labels[9000:10_000])
    model = TrainedBNN.untrained(BNNConfig(num_data=len(fit)), seed=0)
    # A larger scale learning rate lets the posterior widen within this short run.
    train(model, fit, TrainConfig(epochs=8, batch_size=128, lr=1e-3, scale_lr=3e-2, kl_weight=0.1, seed=0), progress=False)
    calibrate(model, held_out, fit, CalibrationConfig(held_out=len(held_out), vae_epochs=3), progress=False)
    return model
