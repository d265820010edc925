"""Image files and PIL images: decoding them fully, and reading them as 28x28 grayscale arrays in [0, 1]."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: MNIST's images are this many pixels on a side.
IMAGE_SIDE = 28

#: What reading a corrupt or foreign image file raises in PIL.
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError)

try:  # phones save photos as HEIC; Pillow reads them through this plugin where it is installed (the ``heif`` extra)
    from pillow_heif import register_heif_opener
except ImportError:
    HEIF_PLUGIN = False
else:
    register_heif_opener()
    HEIF_PLUGIN = True


def upright(image: Image.Image) -> Image.Image:
    """``image`` (opened, not yet closed) fully decoded, turned as its EXIF orientation says it is shown.

    A phone stores a portrait photo's pixels sideways and says so in the EXIF tag; viewers and browsers turn it
    upright, and so must the reader, or the digit the user sees upright reaches the network turned a quarter."""
    image.load()
    return ImageOps.exif_transpose(image)  # a copy, turned or not: safe to use once the file is closed


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """The fully decoded image at ``path``, upright (:func:`upright`); ``ValueError`` naming the file when it cannot
    be read."""
    try:
        with Image.open(path) as image:
            return upright(image)
    except (*UNREADABLE, ValueError) as err:  # the HEIF plugin raises ValueError on a truncated file
        raise ValueError(f"cannot read {path} as an image: {str(err).strip()}{_heif_hint(path)}") from None


def _heif_hint(path: str | os.PathLike[str]) -> str:
    """What to add to the error for an unreadable file at ``path``: what to do if it is a HEIC/HEIF photo."""
    if not _is_heif(path):
        return ""
    if HEIF_PLUGIN:
        return " (a HEIC/HEIF photo that could not be decoded: truncated or corrupt?)"
    return " (a HEIC/HEIF photo, as phones save them: pip install 'bnn-abstain[heif]' to read it, or convert it to JPEG or PNG)"


def _is_heif(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts as a HEIF container does (an ISO box ``ftyp`` of a HEIF brand), which
    Pillow cannot read without a plugin."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")


def high_depth_to_unit(image: Image.Image) -> np.ndarray:
    """A 32-bit or 16-bit PIL image (modes I, I;16*, F) as float64 stretched to [0, 1]; ``ValueError`` on NaN or inf."""
    with np.errstate(invalid="ignore"):  # non-finite pixels are reported just below
        array = np.asarray(image, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"got a PIL image of mode {image.mode} and size {image.size} with NaN or infinite pixels")
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    return (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)


#: PIL modes read by :func:`high_depth_to_unit`.
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


def image_to_array(image: Image.Image) -> np.ndarray:
    """Any PIL image as a 28x28 float32 grayscale array in [0, 1]."""
    if image.mode in HIGH_DEPTH_MODES:
        image = Image.fromarray((high_depth_to_unit(image) * 255).round().astype(np.uint8), mode="L")
    elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels count as background (black), as in MNIST.
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    image = image.convert("L")
    if image.size != (IMAGE_SIDE, IMAGE_SIDE):
        image = image.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0
