import numpy as np
import pytest
import torch
from PIL import Image

from inference import to_batch


@pytest.mark.parametrize(
    "images, n",
    [
        (torch.rand(28, 28), 1),
        (torch.rand(5, 28, 28), 5),
        (torch.rand(5, 1, 28, 28), 5),
        (torch.rand(5, 784), 5),
        (np.random.rand(3, 28, 28), 3),
        (np.random.rand(28, 28).astype(np.float16), 1),
        (torch.rand(2, 784, dtype=torch.float64), 2),
        (torch.rand(28, 28, 4).permute(2, 0, 1), 4),  # non-contiguous
    ],
)
def test_accepted_shapes_and_float_dtypes(images, n):
    x = to_batch(images)
    assert x.shape == (n, 784) and x.dtype == torch.float32
    assert torch.allclose(x, torch.as_tensor(np.asarray(images), dtype=torch.float32).reshape(n, 784))


def test_lists_of_numbers_or_arrays_are_arrays():
    assert to_batch([torch.rand(28, 28), torch.rand(28, 28)]).shape == (2, 784)
    assert to_batch([[0.25] * 784]).shape == (1, 784)


def test_uint8_is_scaled():
    x = to_batch(np.full((2, 28, 28), 255, dtype=np.uint8))
    assert torch.all(x == 1.0)
    assert torch.all(to_batch(torch.zeros(1, 784, dtype=torch.uint8)) == 0)


def test_pil_images_become_28x28_grayscale():
    big = Image.new("RGB", (56, 40), (255, 255, 255))
    x = to_batch(big)
    assert x.shape == (1, 784) and torch.allclose(x, torch.ones(1, 784))
    x = to_batch([Image.new("L", (28, 28), 0), Image.new("L", (28, 28), 255)])
    assert x[0].max() == 0 and x[1].min() == 1
    assert torch.equal(to_batch([Image.new("L", (28, 28), 255)]), torch.ones(1, 784))  # a list of one


@pytest.mark.fault("malformed inputs to predict_with_abstain (hand-picked)")
@pytest.mark.parametrize(
    "images, error, match",
    [
        (torch.rand(27, 28), ValueError, r"shape \(27, 28\)"),
        (torch.rand(2, 3, 28, 28), ValueError, r"shape \(2, 3, 28, 28\)"),
        (torch.rand(2, 783), ValueError, r"shape \(2, 783\)"),
        (torch.rand(784), ValueError, r"shape \(784,\)"),
        (torch.rand(0, 784), ValueError, "empty batch"),
        (torch.full((1, 784), float("nan")), ValueError, "NaN or infinite"),
        (torch.full((1, 784), float("inf")), ValueError, "NaN or infinite"),
        (torch.full((1, 784), 2.0), ValueError, r"values in \[2, 2\]"),
        (torch.full((1, 784), -0.5), ValueError, r"must lie in \[0, 1\]"),
        (torch.zeros(1, 784, dtype=torch.bool), TypeError, "torch.bool is not an image dtype"),
        (torch.zeros(1, 784, dtype=torch.complex64), TypeError, "not an image dtype"),
        (torch.zeros(1, 784, dtype=torch.int64), TypeError, "must be uint8"),
        (np.array([["a"] * 784]), TypeError, "dtype <U1"),
        ("a picture", TypeError, "got str"),
        ([Image.new("L", (28, 28)), torch.rand(28, 28)], TypeError, "mixing PIL images"),
        ([[0.5] * 784, [0.5] * 3], TypeError, "not a rectangular array"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_rejected_inputs_say_what_was_received(images, error, match):
    with pytest.raises(error, match=match):
        to_batch(images)
