"""The evaluation sets, one registry for the abstention evaluation and the OOD benchmark."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from PIL import Image

from inference.data import (
    DatasetNotFoundError,
    ImageSet,
    gaussian_noise,
    load_fashion_mnist,
    load_notmnist,
    natural_photos,
    uniform_noise,
)

#: Out-of-distribution sets by name: ``loader(data_dir, noise_size, photos, seed)``.
OOD_SETS: dict[str, Callable[[str | None, int, int, int], ImageSet]] = {
    "notMNIST": lambda data_dir, noise_size, photos, seed: load_notmnist(data_dir),
    "FashionMNIST": lambda data_dir, noise_size, photos, seed: load_fashion_mnist(False, data_dir),
    "uniform noise": lambda data_dir, noise_size, photos, seed: uniform_noise(noise_size, seed),
    "Gaussian noise": lambda data_dir, noise_size, photos, seed: gaussian_noise(noise_size, seed + 1),
    "photos": lambda data_dir, noise_size, photos, seed: natural_photos(photos, seed),
}


def load_ood_sets(
    data_dir: str | os.PathLike[str] | None,
    *,
    noise_size: int = 10_000,
    photos: int = 300,
    seed: int = 0,
    limit: int | None = None,
    require: bool = False,
) -> tuple[dict[str, ImageSet], dict[str, str]]:
    """Every OOD set that can be loaded, and ``{name: why}`` for those that cannot.

    With ``require=True`` a missing set raises :class:`DatasetNotFoundError` instead.
    """
    folder = None if data_dir is None else str(data_dir)
    sets, missing = {}, {}
    for name, load in OOD_SETS.items():
        try:
            sets[name] = load(folder, noise_size, photos, seed).head(limit)
        except DatasetNotFoundError as err:
            if require:
                raise
            missing[name] = str(err)
    return sets, missing


def on_paper(digit: np.ndarray, size: int, page: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """An MNIST digit as a photo or scan shows one: dark ink on a light ``page`` (H, W), ``size`` pixels tall, at ``at``.

    ``digit`` is 28x28 in [0, 1] (white on black); it is scaled bilinearly, placed with its top-left
    corner at ``at`` (row, column), and inverted with the page.
    """
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR))
    canvas = np.zeros(page, dtype=np.uint8)
    canvas[at[0] : at[0] + size, at[1] : at[1] + size] = big
    return Image.fromarray(255 - canvas)
