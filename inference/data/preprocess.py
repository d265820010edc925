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
4. in a photo, take out a ruled or squared page's printed lines (:func:`remove_rules`);
5. crop to the ink's bounding box;
6. scale to fit 20x20, keeping the aspect ratio (antialiased);
7. shift so that the centre of mass lands at pixel (14, 14) of a 28x28 frame.

An image whose ink is too faint to tell from its background (a blank page or canvas) has no
digit; it comes back all black with ``has_ink`` False, and the predictive refuses it.
"""

from __future__ import annotations

import functools
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
#: A ruled page's printed lines are fainter than the writing: after the stretch (the writing's darkest at 1), a line
#: across the frame whose ink sits at most this high is a rule. A notebook's rules are about 0.3.
RULE_LEVEL = 0.6
#: A rule crosses at least this share of the frame, with the page mostly clear on both sides of it.
RULE_SPAN = 0.9
#: How far a photo's rules may tilt from the frame's rows or columns, in degrees.
RULE_TILT = 10.0
#: Rules are found on the photo max-pooled to at most this many pixels a side, then taken out at full size.
RULE_SEARCH_SIDE = 256

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


@functools.lru_cache(maxsize=8)
def _shear(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The geometry of a ``height`` x ``width`` frame sheared by each tilt the rules may have (every half degree up
    to ``RULE_TILT``): ``(shifts, rows, span)``. Sheared row ``rows[t, i]`` meets column c at row
    ``rows[t, i] + shifts[t, c]``, and ``span[t, i]`` columns within the frame. Images of one size share it."""
    tilts = np.deg2rad(np.arange(-RULE_TILT, RULE_TILT + 1e-9, 0.5))
    shifts = np.round(np.arange(width)[None, :] * np.tan(tilts)[:, None]).astype(int)
    sheared = height + int((shifts.max(1) - shifts.min(1)).max())
    rows = -shifts.max(1)[:, None] + np.arange(sheared)[None, :]  # from the first sheared row that meets the frame
    ordered = np.sort(shifts, axis=1)
    span = np.stack([np.searchsorted(o, height - r) - np.searchsorted(o, -r) for o, r in zip(ordered, rows, strict=True)])
    for array in (shifts, rows, span):
        array.flags.writeable = False
    return shifts, rows, span


def _rule_bands(pooled: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Rules running along the rows of ``pooled`` (page 0, writing up to 1): ``(shifts, bands)``, a rule's row at
    each column relative to column 0 (its tilt), and each one's band of rows ``(first, last)`` at column 0."""
    height, width = pooled.shape
    inked = pooled > INK_LEVEL / 2  # the faint ends of a rule too, which may still count for the ink box
    near = ndimage.maximum_filter1d(inked, 3, axis=0)  # a digital line steps by a row where it tilts
    cols = np.arange(width)
    shifts, rows, span = _shear(height, width)
    # Each column gives a sheared row one pixel, so a row's hits are a count of the near pixels that shear onto it:
    # one bincount over every tilt, as a Hough transform.
    near_rows, near_cols = np.nonzero(near)
    sheared = rows.shape[1]
    index = near_rows[None, :] - shifts[:, near_cols] - rows[:, :1] + sheared * np.arange(len(shifts))[:, None]
    hits = np.bincount(index.ravel(), minlength=len(shifts) * sheared).reshape(len(shifts), sheared)
    if hits.max() < RULE_SPAN * width / 2:  # no line crosses half the frame: most images stop here
        return shifts[0], []
    coverage = hits / np.maximum(span, 1)
    # The tilt is the one that lines up the most lines crossing at least half the frame; lines cut short by a
    # corner of the frame (a tilted page's) are rules at that tilt too, once one line crosses the frame.
    scores = np.where((span >= width / 2) & (coverage >= RULE_SPAN), coverage, 0.0).sum(1)
    best = int(np.argmax(scores))
    if scores[best] == 0.0:
        return shifts[best], []
    coverage, missing = coverage[best], (span - hits)[best]
    lines = rows[best][:, None] + shifts[best][None, :]
    inside = (lines >= 0) & (lines < height)
    clipped = np.clip(lines, 0, height - 1)
    on_line = inside & inked[clipped, cols]
    bands = []
    # A line cut short by a corner is a few pixels long: one pixel may miss where it steps out of the frame.
    flagged = np.flatnonzero((coverage > 0) & ((coverage >= RULE_SPAN) | (missing <= 1)))
    for band in np.split(flagged, np.flatnonzero(np.diff(flagged) > 1) + 1) if flagged.size else []:
        first, last = int(band[0]), int(band[-1])
        # Beside a rule the page is mostly clear (writing and a squared page's columns may cross it); a texture is
        # covered throughout.
        clear = [coverage[row] <= 0.75 for row in (first - 2, last + 2) if 0 <= row < len(coverage)]
        # The line's level, column by column (the darkest of its band there): writing crosses less than half of it.
        across = np.where(on_line[first : last + 1], pooled[clipped[first : last + 1], cols], 0.0).max(0)
        line = across[on_line[first : last + 1].any(0)]
        if all(clear) and last - first < max(4, height // 10) and np.median(line) <= RULE_LEVEL:
            bands.append((first + int(rows[best, 0]), last + int(rows[best, 0])))
    return shifts[best], bands


def _take_out_rows(ink: np.ndarray, factor: int, shifts: np.ndarray, bands: list[tuple[int, int]]) -> None:
    """Take the rules ``(shifts, bands)`` found by :func:`_rule_bands` on ``ink`` max-pooled by ``factor`` out of
    ``ink``, in place."""
    height, width = ink.shape
    cols = np.arange(width)
    # Band row r lies on pooled row r + shifts[c] of pooled column c, which covers image columns
    # c * factor ... c * factor + factor - 1 and rows factor times its own; a pooled row's margin on each side.
    pooled_shift = shifts[cols // factor]
    for first, last in bands:
        top = (first - 1 + pooled_shift) * factor
        thickness = (last - first + 3) * factor
        rows = top[None, :] + np.arange(thickness)[:, None]
        inside = (rows >= 0) & (rows < height)
        band = np.where(inside, ink[np.clip(rows, 0, height - 1), cols], 0.0)
        above = np.where(top - 1 >= 0, ink[np.clip(top - 1, 0, height - 1), cols], 0.0)
        below = np.where(top + thickness < height, ink[np.clip(top + thickness, 0, height - 1), cols], 0.0)
        # Writing is darker than the rule and stays; the rest of the band is what lies on both sides of it, so a stroke
        # that crosses the rule goes on through and the rule between strokes becomes page.
        cleaned = np.maximum(np.where(band > RULE_LEVEL, band, 0.0), np.minimum(above, below)[None, :])
        ink[np.clip(rows, 0, height - 1)[inside], np.broadcast_to(cols, rows.shape)[inside]] = cleaned[inside]


def remove_rules(ink: np.ndarray) -> np.ndarray:
    """``ink`` (a photo's page at 0, its writing up to 1) with a ruled or squared page's printed lines taken out.

    A rule is a thin line that crosses at least ``RULE_SPAN`` of the frame, tilted by at most ``RULE_TILT`` degrees
    from its rows or columns, with the page mostly clear on both sides of it, and fainter than the writing (its ink
    at most ``RULE_LEVEL``): a pen's stroke across the frame, however straight, is as dark as the rest of the writing
    and stays. Rules are found on the photo max-pooled to ``RULE_SEARCH_SIDE`` pixels a side (one tilt for all of them,
    as a page's rules are parallel) and taken out at full size: within a rule's band, what is darker than a rule
    stays, and the rest becomes what lies on both sides of the band (page, or a stroke that crosses the rule). Rules
    as dark as the writing are not found, and stay; faint marks left on the frame's edge, where a rule leaves it, are
    page. A page without rules comes back unchanged.
    """
    height, width = ink.shape
    factor = -(-max(height, width) // RULE_SEARCH_SIDE)
    padded = np.zeros((-(-height // factor) * factor, -(-width // factor) * factor))
    padded[:height, :width] = ink
    pooled = padded.reshape(padded.shape[0] // factor, factor, -1, factor).max(axis=(1, 3))
    # A squared page's columns are the transpose's rows; both are found before either is taken out, which would cut
    # the other's lines where they cross.
    row_shifts, row_bands = _rule_bands(pooled)
    col_shifts, col_bands = _rule_bands(pooled.T)
    if not (row_bands or col_bands):
        return ink
    cleaned = ink.copy()
    _take_out_rows(cleaned, factor, row_shifts, row_bands)
    _take_out_rows(cleaned.T, factor, col_shifts, col_bands)  # the transpose is a view: cleaned in place
    # What is left of a rule where it leaves the frame, a few pixels too short to line up: faint marks on the edge.
    marks, count = ndimage.label(cleaned > INK_LEVEL / 2)
    faint = np.zeros(count + 1, dtype=bool)
    faint[_border(marks)] = True
    faint[marks[cleaned > RULE_LEVEL]] = False  # a mark with any pixel as dark as writing is writing
    faint[0] = False
    cleaned[faint[marks]] = 0.0
    return cleaned


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
    if photo:
        ink = remove_rules(ink)
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
