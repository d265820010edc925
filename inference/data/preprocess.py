"""Photos, scans and drawings to MNIST's format, the way MNIST itself was made.

MNIST's digits are white ink on black, scaled to fit a 20x20 box with their aspect ratio kept,
and placed in a 28x28 frame so that their centre of mass sits at the frame's centre. A photo of
a digit written on paper is dark ink on a light page, of any size and anywhere in the picture.
:func:`mnist_format` turns one into the other:

1. grayscale in [0, 1] (transparent pixels become the background);
2. invert when the background (the median of the border) is light;
3. subtract the background and stretch the ink to full contrast (the background is the border's median; in a
   photo, a smooth surface fitted to the border where the light falls unevenly, :func:`background`, and the
   sensor's grain is set to the page);
4. crop to the ink's bounding box;
5. scale to fit 20x20, keeping the aspect ratio (antialiased);
6. shift so that the centre of mass lands at pixel (14, 14) of a 28x28 frame.

An image whose ink is too faint to tell from its background (a blank page or canvas) has no
digit; it comes back all black with ``has_ink`` False, and the predictive refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch import Tensor

from inference.data.images import HIGH_DEPTH_MODES, IMAGE_SIDE, high_depth_to_unit

#: The ink of an MNIST digit fits in a box this many pixels wide, inside the 28x28 frame.
DIGIT_BOX = 20
#: Where MNIST puts the ink's centre of mass (row, column), measured on its test set: 13.99, 14.00.
CENTRE = (14.0, 14.0)
#: Ink must differ from the background by this much (on a 0..1 scale) to count as ink.
MIN_CONTRAST = 0.15
#: After stretching, pixels above this count as ink for the bounding box (ignores faint paper texture).
INK_LEVEL = 0.2
#: A photo's grain: pixels within this many of its standard deviations of the page are page.
NOISE_LEVELS = 5.0
#: Images at least this many pixels on their shorter side are photos, whose light and grain vary across the page;
#: a smaller one is a crop the size of a dataset's digit (MNIST's 28, USPS's 16), often cut tight, whose border
#: holds ink as well as page: its page is the border's median, as MNIST's own scans had.
PHOTO_SIDE = 64

ACCEPTED = "a PIL image, a 2-D array (H, W) of floats in [0, 1] or uint8, a 3-D stack (N, H, W) of them, or a list of these"


def _gray(image: Image.Image | np.ndarray) -> np.ndarray:
    """A 2-D float64 array in [0, 1] at the image's own size."""
    if isinstance(image, Image.Image):
        if image.mode in HIGH_DEPTH_MODES:
            return high_depth_to_unit(image)
        if "A" in image.mode or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
            alpha = rgba[..., 3]
            luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
            # Transparent pixels are background: the opposite of what the opaque pixels (the ink) look like.
            ink = float((luminance * alpha).sum() / alpha.sum()) if alpha.sum() > 0 else 1.0
            background = 1.0 if ink < 0.5 else 0.0
            return luminance * alpha + background * (1.0 - alpha)
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    array = np.asarray(image)
    if array.ndim != 2 or array.dtype.kind not in "uif" or array.dtype == np.bool_:
        raise TypeError(f"got an array of shape {array.shape} and dtype {array.dtype}; expected {ACCEPTED}")
    if array.dtype.kind in "ui":
        if array.dtype != np.uint8:
            raise TypeError(f"integer images must be uint8, got {array.dtype}; expected {ACCEPTED}")
        return array.astype(np.float64) / 255.0
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("got an image with NaN or infinite pixels")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"float images must lie in [0, 1], got values in [{array.min():.4g}, {array.max():.4g}]")
    return array


def _border(gray: np.ndarray) -> np.ndarray:
    """The outermost pixels of a 2-D array: top row, bottom row, left column, right column."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _noise(ink: np.ndarray) -> float:
    """The standard deviation of a photo's grain in ``ink`` (page at 0, not yet clipped), from the border's median
    absolute deviation (robust to ink on up to half of the border): 0 for a page without grain."""
    border = _border(ink)
    return 1.4826 * float(np.median(np.abs(border - np.median(border))))


def background(gray: np.ndarray, iterations: int = 5) -> float | np.ndarray:
    """The page under the ink of a 2-D ``gray`` (ink lighter than the page): the border's median, or, where the light
    falls unevenly across a photo, a quadratic surface in the pixel's row and column fitted to the border.

    The border samples the light all around the frame. Its residuals from the median are fitted by least squares,
    keeping only those within ``MIN_CONTRAST / 2`` of the fit so far (ink that touches the frame is not page), and
    refitted ``iterations`` times. A surface that varies by at most ``MIN_CONTRAST / 2`` across the frame (half the
    faintest ink's contrast) is taken for the flat page it nearly is, and the median stands, a float, as before
    12-06: so does an evenly lit page, whose residuals are all 0. Otherwise the surface, an array of ``gray``'s shape.
    """
    height, width = gray.shape
    border = _border(gray)
    level = float(np.median(border))
    residual = border - level
    if not residual.any():
        return level
    rows = np.concatenate([np.zeros(width), np.full(width, height - 1), np.arange(height), np.arange(height)])
    cols = np.concatenate([np.arange(width), np.arange(width), np.zeros(height), np.full(height, width - 1)])

    def unit(index: np.ndarray, size: int) -> np.ndarray:
        return 2 * index / max(size - 1, 1) - 1  # rows and columns in [-1, 1]

    u, v = unit(rows, height), unit(cols, width)
    design = np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], -1)
    fitted = np.zeros_like(residual)
    for _ in range(iterations):
        page = np.abs(residual - fitted) <= MIN_CONTRAST / 2
        coefficients = np.linalg.lstsq(design[page], residual[page], rcond=None)[0]
        fitted = design @ coefficients
    # The surface term by term, each a row or a column broadcast: no (height, width, 6) array for a large photo.
    a, b, c, d, e, f = coefficients
    u, v = unit(np.arange(height), height)[:, None], unit(np.arange(width), width)[None, :]
    surface = (a + b * u + d * u * u) + (c + e * v + f * u) * v
    return level + surface if np.ptp(surface) > MIN_CONTRAST / 2 else level


def mnist_format(image: Image.Image | np.ndarray) -> tuple[np.ndarray, bool]:
    """One image in MNIST's format.

    Parameters
    ----------
    image
        A PIL image of any mode and size, or a 2-D array (H, W) of floats in [0, 1] or uint8.

    Returns
    -------
    (digit, has_ink)
        ``digit``: float32 ``(28, 28)`` in [0, 1], white ink on black, centred as in MNIST.
        ``has_ink``: False when no ink stands out from the background (``digit`` is then all zero).
    """
    gray = _gray(image)
    blank = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    if gray.size == 0:
        return blank, False
    border = _border(gray)
    if np.median(border) > 0.5:
        gray, border = 1.0 - gray, 1.0 - border
    photo = min(gray.shape) >= PHOTO_SIDE
    ink = gray - (background(gray) if photo else float(np.median(border)))
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        return blank, False
    ink /= contrast
    # A photo's grain (measured before clipping, which would hide half of it) is no ink: below NOISE_LEVELS of its
    # standard deviations every pixel is page, and the rest is stretched again. A page without grain is unchanged.
    floor = min(NOISE_LEVELS * _noise(ink), 0.5) if photo else 0.0
    if floor:
        ink = (ink - floor) / (1.0 - floor)
    ink = np.clip(ink, 0.0, 1.0)
    rows, cols = np.nonzero(ink > INK_LEVEL)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)
    frame = np.zeros((IMAGE_SIDE, IMAGE_SIDE))
    top, left = (IMAGE_SIDE - digit.shape[0]) // 2, (IMAGE_SIDE - digit.shape[1]) // 2
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    if frame.sum() <= 0:
        return blank, False
    row, col = ndimage.center_of_mass(frame)
    # Whole-pixel shifts keep the strokes sharp; the box leaves 4 pixels a side to move into.
    shift = (round(CENTRE[0] - row), round(CENTRE[1] - col))
    frame = ndimage.shift(frame, shift, order=0, mode="constant", cval=0.0)
    return frame.astype(np.float32), True


def mnist_format_batch(images: Any) -> tuple[Tensor, Tensor]:
    """:func:`mnist_format` over a batch: ``(N, 784)`` float32 images and an ``(N,)`` bool ``has_ink`` mask.

    ``images`` is a PIL image, a 2-D array, a 3-D stack ``(N, H, W)``, or a sequence of PIL images and 2-D arrays.
    """
    if isinstance(images, Tensor):
        images = images.detach().cpu().numpy()
    if isinstance(images, (Image.Image, np.ndarray)) and not (isinstance(images, np.ndarray) and images.ndim == 3):
        items: Sequence[Any] = [images]
    elif isinstance(images, np.ndarray) or (isinstance(images, Sequence) and not isinstance(images, (str, bytes))):
        items = list(images)
    else:
        raise TypeError(f"got {type(images).__name__}; expected {ACCEPTED}")
    if not items:
        raise ValueError("got an empty batch. Pass at least one image")
    digits, inked = zip(*(mnist_format(item) for item in items), strict=True)
    batch = torch.from_numpy(np.stack(digits).reshape(len(items), IMAGE_SIDE * IMAGE_SIDE))
    return batch, torch.tensor(inked, dtype=torch.bool)
