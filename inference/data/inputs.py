"""Turn what a user has (tensors, arrays, PIL images) into a validated ``(N, 784)`` batch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from inference.data.images import IMAGE_SIDE, image_to_array

ACCEPTED = (
    "a torch tensor, numpy array or nested list shaped (28, 28), (N, 28, 28), (N, 1, 28, 28) or (N, 784) "
    "holding floats in [0, 1] or uint8 in 0..255, a PIL image, or a list of PIL images"
)


def _describe(images: Any) -> str:
    if isinstance(images, (Tensor, np.ndarray)):
        kind = f"{type(images).__module__.split('.')[0]}.{type(images).__name__}"
        return f"{kind} of shape {tuple(images.shape)} and dtype {images.dtype}"
    return type(images).__name__


def _to_tensor(images: Any) -> Tensor:
    if isinstance(images, Image.Image):
        return torch.from_numpy(image_to_array(images)).unsqueeze(0)
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        if len(images) > 0 and all(isinstance(im, Image.Image) for im in images):
            return torch.from_numpy(np.stack([image_to_array(im) for im in images]))
        if any(isinstance(im, Image.Image) for im in images):
            raise TypeError(f"got a {type(images).__name__} mixing PIL images with other things; expected {ACCEPTED}")
        try:
            images = np.asarray(images)
        except (ValueError, TypeError, RuntimeError):
            raise TypeError(
                f"got a {type(images).__name__} that is not a rectangular array of numbers; expected {ACCEPTED}"
            ) from None
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "biufc":
            raise TypeError(f"got a numpy array of dtype {images.dtype}; expected {ACCEPTED}")
        if not images.flags.writeable:  # torch warns about read-only memory (np.frombuffer, memory maps)
            images = images.copy()
        try:
            return torch.from_numpy(np.ascontiguousarray(images))
        except TypeError:
            raise TypeError(f"got a numpy array of dtype {images.dtype}, which torch cannot hold; expected {ACCEPTED}") from None
    if isinstance(images, Tensor):
        return images
    raise TypeError(f"got {type(images).__name__}; expected {ACCEPTED}")


def to_batch(images: Any, expected_dim: int = IMAGE_SIDE * IMAGE_SIDE) -> Tensor:
    """Validate ``images`` and return them as float32 ``(N, 784)`` in [0, 1] (on their own device).

    Raises
    ------
    TypeError
        For types and dtypes that are not images (bool, complex, integers other than uint8, ...).
    ValueError
        For other shapes, empty batches, NaN or infinite values, floats outside [0, 1].
    """
    what = _describe(images)
    x = _to_tensor(images)
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"got {what}; {x.dtype} is not an image dtype. Expected {ACCEPTED}")
    if not x.is_floating_point() and x.dtype != torch.uint8:
        raise TypeError(
            f"got {what}; integer images must be uint8 in 0..255 (convert with .to(torch.uint8) or divide by 255 "
            f"to get floats in [0, 1]). Expected {ACCEPTED}"
        )
    side = IMAGE_SIDE
    if expected_dim != side * side:
        raise ValueError(f"this model expects {expected_dim} inputs per image; only 28x28 images are supported")
    shape = tuple(x.shape)
    if x.dim() == 2 and shape == (side, side):
        x = x.reshape(1, -1)
    elif (x.dim() == 3 and shape[1:] == (side, side)) or (x.dim() == 4 and shape[1:] == (1, side, side)):
        x = x.reshape(shape[0], expected_dim)
    elif not (x.dim() == 2 and shape[1] == expected_dim):
        raise ValueError(f"got {what}; expected {ACCEPTED}")
    if x.shape[0] == 0:
        raise ValueError(f"got {what}: an empty batch. Pass at least one image")
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    # min and max carry NaN and infinities through, so one pass checks everything without a mask as big as x.
    lo, hi = (v.item() for v in torch.aminmax(x.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = (~torch.isfinite(x)).nonzero()[0, 0].item()
        raise ValueError(f"got {what} with NaN or infinite values (first in image {bad}); expected {ACCEPTED}")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"got {what} with values in [{lo:.4g}, {hi:.4g}]; float images must lie in [0, 1] "
            f"(divide 0..255 pixels by 255). Expected {ACCEPTED}"
        )
    return x.to(torch.float32)
