"""The evaluation sets: one registry for the abstention evaluation and the OOD benchmark.

All of them are for measuring only; nothing is trained, fitted, calibrated or chosen on them.

- far from the digits: notMNIST letters (typeset), FashionMNIST, uniform and Gaussian noise, photos;
- near the digits (handwriting that is not a digit): KMNIST (cursive Japanese), Omniglot characters
  from non-Latin alphabets (as drawn, and with strokes thickened to the drawing page's pen), and EMNIST
  handwritten letters;
- digits from another population of writers: USPS, with labels, so that right and wrong answers count.

Omniglot and USPS come as large images or 16x16 scans: they are brought to MNIST's format the way
a user's image is (:func:`inference.data.mnist_format`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from inference.data import (
    IMAGE_SIDE,
    DatasetNotFoundError,
    ImageSet,
    image_to_array,
    load_torchvision,
    mnist_format,
    read_image,
    resolve_data_dir,
    torchvision_dataset,
)


def load_fashion_mnist(train: bool = False, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> ImageSet:
    """FashionMNIST clothes; ``train=False`` gives the 10,000 test images."""
    return load_torchvision("FashionMNIST", train, data_dir, download)


def load_image_folder(root: str | os.PathLike[str], name: str | None = None) -> ImageSet:
    """Images in class sub-folders (``root/A/x.png`` ...), as 28x28 grayscale.

    Files that cannot be read as images are skipped and listed in ``skipped``
    (a warning says how many); labels are the sub-folders' indices in sorted order.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist; expected class sub-folders such as {root}/A/*.png")
    from torchvision.datasets import ImageFolder  # on first use: torchvision adds seconds to every start-up

    try:
        folder = ImageFolder(str(root), allow_empty=True)
    except FileNotFoundError as err:
        raise DatasetNotFoundError(f"{root} has no class sub-folders with images ({err})") from None
    images, labels, skipped = [], [], []
    for path, label in folder.samples:
        try:
            images.append(image_to_array(read_image(path)))
            labels.append(label)
        except ValueError:  # unreadable, or NaN pixels
            skipped.append(path)
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} unreadable image file(s), e.g. {skipped[0]}", stacklevel=2)
    if not images:
        raise DatasetNotFoundError(f"{root} has no readable images in class sub-folders (skipped {len(skipped)})")
    stacked = torch.from_numpy(np.stack(images)).reshape(len(images), -1)
    return ImageSet(name or root.name, stacked, torch.tensor(labels, dtype=torch.int64), skipped)


def load_notmnist(data_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """The notMNIST letters in ``<data_dir>/notMNIST_459/A..J``."""
    root = resolve_data_dir(data_dir) / "notMNIST_459"
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"notMNIST is not in {root}. Put the letter images there in one sub-folder per class "
            f"(notMNIST_459/A/*.png ... notMNIST_459/J/*.png); torchvision cannot download it."
        )
    return load_image_folder(root, "notMNIST")


#: scikit-image sample photographs used as natural images (loaded without a network where bundled).
PHOTOS = (
    "astronaut", "camera", "cat", "coffee", "coins", "grass", "gravel", "brick",
    "hubble_deep_field", "immunohistochemistry", "moon", "rocket", "retina", "page", "text",
)  # fmt: skip


def natural_photos(num: int = 300, seed: int = 0) -> ImageSet:
    """Photographs "MNIST-ified": scikit-image's sample photos and random crops of them, 28x28 grayscale.

    Each photo appears whole, then random square crops (a quarter to all of its short
    side) fill the set up to ``num`` images. Photos that cannot be loaded are skipped
    and listed in ``skipped``.
    """
    try:
        from skimage import data as samples  # the evaluation extra
    except ImportError:
        raise DatasetNotFoundError("the photos come from scikit-image: pip install 'bnn-abstain[evaluation]'") from None

    g = np.random.default_rng(seed)
    photos, skipped = [], []
    for name in PHOTOS:
        try:
            photos.append(Image.fromarray(np.asarray(getattr(samples, name)())))
        except Exception as err:  # a photo that needs a download, a renamed loader...
            skipped.append(f"{name} ({type(err).__name__})")
    if not photos:
        raise DatasetNotFoundError(f"no scikit-image sample photo could be loaded (tried {', '.join(PHOTOS)})")
    images = [image_to_array(photo) for photo in photos][:num]
    while len(images) < num:
        photo = photos[len(images) % len(photos)]
        side = int(min(photo.size) * g.uniform(0.25, 1.0))
        left, top = g.integers(0, photo.size[0] - side + 1), g.integers(0, photo.size[1] - side + 1)
        images.append(image_to_array(photo.crop((left, top, left + side, top + side))))
    stacked = torch.from_numpy(np.stack(images)).reshape(len(images), -1)
    return ImageSet("photos", stacked, torch.full((len(images),), -1), skipped)


def uniform_noise(num: int = 10_000, seed: int = 0) -> ImageSet:
    """White noise, every pixel uniform in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return ImageSet("uniform-noise", torch.rand(num, IMAGE_SIDE**2, generator=g), torch.full((num,), -1))


def gaussian_noise(num: int = 10_000, seed: int = 0, mean: float = 0.5, std: float = 1.0) -> ImageSet:
    """Gaussian noise N(mean, std^2) clipped to [0, 1] (the Hendrycks & Gimpel OOD set)."""
    g = torch.Generator().manual_seed(seed)
    images = (torch.randn(num, IMAGE_SIDE**2, generator=g) * std + mean).clamp_(0.0, 1.0)
    return ImageSet("gaussian-noise", images, torch.full((num,), -1))


def _stacked(name: str, images: list[np.ndarray], labels: list[int] | np.ndarray) -> ImageSet:
    pixels = torch.from_numpy(np.stack(images).astype(np.float32)).reshape(len(images), -1)
    return ImageSet(name, pixels, torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} is not in {path.parent}: expected {path.name} there")
    return path


def load_kmnist(data_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """The 10,000 KMNIST test characters (cursive Japanese), from ``<data_dir>/KMNIST/raw/t10k-*-idx*-ubyte.gz``.

    Only the test files are needed; each is checked against torchvision's MD5.
    """
    raw = resolve_data_dir(data_dir) / "KMNIST" / "raw"
    arrays = []
    for stem, header in (("t10k-images-idx3-ubyte", 16), ("t10k-labels-idx1-ubyte", 8)):
        path = _require(raw / f"{stem}.gz", "KMNIST")
        md5 = dict(torchvision_dataset("KMNIST").resources)[path.name]
        body = path.read_bytes()
        if hashlib.md5(body).hexdigest() != md5:
            raise DatasetNotFoundError(f"{path} is not the published KMNIST file (MD5 differs from {md5})")
        arrays.append(np.frombuffer(gzip.decompress(body), dtype=np.uint8, offset=header))
    images = torch.from_numpy(arrays[0].reshape(-1, IMAGE_SIDE * IMAGE_SIDE).astype(np.float32) / 255.0)
    return ImageSet("KMNIST", images, torch.from_numpy(arrays[1].astype(np.int64)))


#: The Omniglot background alphabets left out: Latin letters are letters, which EMNIST covers.
OMNIGLOT_LEFT_OUT = ("Latin",)
#: A min filter this wide thickens Omniglot's 105x105 strokes to about the drawing page's pen (28 px on 280).
PAGE_PEN_FILTER = 9


def _omniglot_pngs(archives: list[Path]) -> Iterator[bytes]:
    """The PNG files of ``archives`` in sorted order, less the alphabets of :data:`OMNIGLOT_LEFT_OUT`, read lazily."""
    for archive in archives:
        with zipfile.ZipFile(archive) as z:
            for name in sorted(n for n in z.namelist() if n.endswith(".png")):
                if not any(f"/{alphabet}/" in name for alphabet in OMNIGLOT_LEFT_OUT):
                    yield z.read(name)


def load_omniglot(data_dir: str | os.PathLike[str] | None = None, pen: int = 1, limit: int | None = None) -> ImageSet:
    """Omniglot characters from ``<data_dir>/Omniglot/*.zip`` (non-Latin alphabets), in MNIST's format.

    ``pen`` > 1 thickens the strokes with a ``pen`` x ``pen`` min filter on the 105x105 drawing first.
    ``limit``: only the first this many (the same images as ``load_omniglot(...).head(limit)``, sooner).
    Labels are -1 (none of them is a digit).
    """
    root = resolve_data_dir(data_dir) / "Omniglot"
    archives = sorted(root.glob("*.zip"))
    if not archives:
        raise DatasetNotFoundError(
            f"Omniglot is not in {root}: expected its zip files there (all_runs.zip, images_background_small1.zip)"
        )
    images = []
    for png in itertools.islice(_omniglot_pngs(archives), limit):
        drawing = Image.open(io.BytesIO(png)).convert("L")
        if pen > 1:
            drawing = drawing.filter(ImageFilter.MinFilter(pen))
        images.append(mnist_format(drawing)[0])
    suffix = "" if pen == 1 else ", page-pen strokes"
    return _stacked(f"Omniglot{suffix}", images, np.full(len(images), -1))


def load_emnist_letters(data_dir: str | os.PathLike[str] | None = None) -> ImageSet:
    """The EMNIST handwritten letters sample in ``<data_dir>/EMNIST_letters/emnist-letters-test-sample.csv``.

    Rows are a quoted index, the label (1 = a ... 26 = z) and 784 column-major pixels; the first row is a junk
    header. Labels are kept as letters' numbers (none is a digit).
    """
    path = _require(resolve_data_dir(data_dir) / "EMNIST_letters" / "emnist-letters-test-sample.csv", "EMNIST letters")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    values = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)
    pixels = values[:, 1:].reshape(-1, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1)  # EMNIST stores columns first
    return ImageSet(
        "EMNIST letters", torch.from_numpy(pixels.reshape(len(rows), -1) / 255.0).float(), torch.full((len(rows),), -1)
    )


def load_usps(data_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> ImageSet:
    """The 2,007 USPS test digits (``<data_dir>/USPS/zip.test.gz``, 16x16 in [-1, 1]), brought to MNIST's format.

    USPS digits were written by other people and scanned another way: digits from another population.
    ``limit``: only the first this many are brought to MNIST's format.
    """
    path = _require(resolve_data_dir(data_dir) / "USPS" / "zip.test.gz", "USPS")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f)
    table = table[:limit]
    scans = (table[:, 1:].reshape(-1, 16, 16) + 1.0) / 2.0  # -1 background, 1 ink
    images = [mnist_format(Image.fromarray((np.clip(s, 0, 1) * 255).round().astype(np.uint8)))[0] for s in scans]
    return _stacked("USPS", images, table[:, 0].astype(np.int64))


#: Sets by name: ``loader(data_dir, noise_size, photos, seed, limit)``; a loader may stop after ``limit`` images
#: (the slow ones do), and :func:`load_sets` keeps the first ``limit`` either way. Labelled digit sets are in
#: :data:`DIGIT_SETS`.
Loader = Callable[[str | None, int, int, int, int | None], ImageSet]
OOD_SETS: dict[str, Loader] = {
    "notMNIST": lambda data_dir, noise_size, photos, seed, limit: load_notmnist(data_dir),
    "FashionMNIST": lambda data_dir, noise_size, photos, seed, limit: load_fashion_mnist(False, data_dir),
    "uniform noise": lambda data_dir, noise_size, photos, seed, limit: uniform_noise(noise_size, seed),
    "Gaussian noise": lambda data_dir, noise_size, photos, seed, limit: gaussian_noise(noise_size, seed + 1),
    "photos": lambda data_dir, noise_size, photos, seed, limit: natural_photos(photos, seed),
    "KMNIST": lambda data_dir, noise_size, photos, seed, limit: load_kmnist(data_dir),
    "Omniglot": lambda data_dir, noise_size, photos, seed, limit: load_omniglot(data_dir, limit=limit),
    "Omniglot, page-pen strokes": lambda data_dir, noise_size, photos, seed, limit: load_omniglot(
        data_dir, PAGE_PEN_FILTER, limit
    ),
    "EMNIST letters": lambda data_dir, noise_size, photos, seed, limit: load_emnist_letters(data_dir),
}
#: Sets of handwritten digits from elsewhere, whose answers are right or wrong.
DIGIT_SETS: dict[str, Loader] = {"USPS": lambda data_dir, noise_size, photos, seed, limit: load_usps(data_dir, limit)}


def load_sets(
    registry: dict[str, Loader],
    data_dir: str | os.PathLike[str] | None,
    *,
    noise_size: int = 10_000,
    photos: int = 300,
    seed: int = 0,
    limit: int | None = None,
    require: bool = False,
) -> tuple[dict[str, ImageSet], dict[str, str]]:
    """Every set of ``registry`` that can be loaded, and ``{name: why}`` for those that cannot.

    With ``require=True`` a missing set raises :class:`DatasetNotFoundError` instead.
    """
    folder = None if data_dir is None else str(data_dir)
    sets, missing = {}, {}
    for name, load in registry.items():
        try:
            sets[name] = load(folder, noise_size, photos, seed, limit).head(limit)
        except DatasetNotFoundError as err:
            if require:
                raise
            missing[name] = str(err)
    return sets, missing


def load_ood_sets(data_dir: str | os.PathLike[str] | None, **kwargs) -> tuple[dict[str, ImageSet], dict[str, str]]:
    """Every set of :data:`OOD_SETS` that can be loaded (see :func:`load_sets`)."""
    return load_sets(OOD_SETS, data_dir, **kwargs)


def on_paper(digit: np.ndarray, size: int, page: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """An MNIST digit as a photo or scan shows one: dark ink on a light ``page`` (H, W), ``size`` pixels tall, at ``at``.

    ``digit`` is 28x28 in [0, 1] (white on black); it is scaled bilinearly, placed with its top-left
    corner at ``at`` (row, column), and inverted with the page.
    """
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR))
    canvas = np.zeros(page, dtype=np.uint8)
    canvas[at[0] : at[0] + size, at[1] : at[1] + size] = big
    return Image.fromarray(255 - canvas)
