"""The served page's shared fixtures: requests whose replies are known."""

import pytest

from inference.evaluation.serving import Request, good_request, png_bytes
from inference.evaluation.sets import on_paper
from tests.inference.web.test_app import truncated


@pytest.fixture(scope="module")
def mixed(mnist_model, mnist_test) -> tuple[list[Request], list[Request]]:
    """Six re-rendered MNIST test digits with the library's answers, and three bad bodies with their 4xx."""
    digits = mnist_test.images[:6].reshape(-1, 28, 28).numpy()
    good = [
        good_request(mnist_model, f"digit {i}", png_bytes(on_paper(d, 90, (140, 120), (10 + i, 20))))
        for i, d in enumerate(digits)
    ]
    bad = [Request("empty", b"", 400), Request("text", b"hello", 415), Request("truncated", truncated(), 400)]
    return good, bad
