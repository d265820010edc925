"""Datasets as in-memory tensors of flattened 28x28 images in [0, 1].

MNIST and FashionMNIST come from :mod:`torchvision.datasets` (downloaded when
missing and the network allows it); notMNIST is a folder of letter images in
class sub-folders; noise is generated from a seed.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision import datasets

#: Environment variable that sets the data directory when no flag is given.
DATA_DIR_ENV = "BNN_DATA_DIR"
IMAGE_SIDE = 28

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TORCHVISION = {"MNIST": datasets.MNIST, "FashionMNIST": datasets.FashionMNIST}
#: MD5 of the extracted IDX files (torchvision's ``resources`` lists those of the .gz files).
_EXTRACTED_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing and could not be downloaded; the message says where to put it."""


class CorruptDatasetError(ValueError):
    """A dataset file is there but is not the published file (truncated, damaged or another file)."""


@dataclass
class ImageSet:
    """Images ``(N, 784)`` float32 in [0, 1], labels ``(N,)`` int64 (-1 where there are none)."""

    name: str
    images: Tensor
    labels: Tensor
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]

    def head(self, limit: int | None) -> ImageSet:
        """The first ``limit`` images (all of them when ``limit`` is None or larger)."""
        if limit is None or len(self) <= limit:
            return self
        return ImageSet(self.name, self.images[:limit], self.labels[:limit], self.skipped)


def split_calibration(data: ImageSet, size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A seeded random split of ``data`` into ``(training, held_out)`` with ``size`` held-out images.

    The held-out images calibrate the abstention rule; nothing is trained or fitted on them.
    """
    if not 0 <= size < len(data):
        raise ValueError(f"cannot hold out {size} of {len(data)} images; keep at least one for training")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    keep, held = order[size:].sort().values, order[:size].sort().values
    return (
        ImageSet(f"{data.name}-fit", data.images[keep], data.labels[keep]),
        ImageSet(f"{data.name}-held-out", data.images[held], data.labels[held]),
    )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else ``$BNN_DATA_DIR``, else ``./data``."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or "data"
    return Path(data_dir).expanduser()


def _flatten(images: Tensor) -> Tensor:
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)


def load_torchvision(name: str, train: bool, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> ImageSet:
    """MNIST or FashionMNIST, train or test split, via ``torchvision.datasets``."""
    root = resolve_data_dir(data_dir)
    cls = _TORCHVISION[name]
    raw = root / name / "raw"
    verify_raw_files(name, raw, train)
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise _missing(name, raw) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = cls(str(root), train=train, download=True)
        except Exception as err:  # no network, a mirror down, a read-only folder...
            raise _missing(name, raw, err) from err
    split = "train" if train else "test"
    return ImageSet(f"{name}-{split}", _flatten(ds.data), ds.targets.to(torch.int64))


def verify_raw_files(name: str, raw: Path, train: bool) -> list[Path]:
    """Check the MD5 of every IDX file of the split that is present (extracted or .gz); return those checked.

    Raises
    ------
    CorruptDatasetError
        Naming the file, its size and checksum, and how to replace it.
    """
    prefix = "train" if train else "t10k"
    expected = dict(_EXTRACTED_MD5[name])
    expected.update({file: md5 for file, md5 in _TORCHVISION[name].resources})
    checked = []
    for file, md5 in expected.items():
        path = raw / file
        if not file.startswith(prefix) or not path.is_file():
            continue
        checked.append(path)
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != md5:
            raise CorruptDatasetError(
                f"{path} ({path.stat().st_size:,} bytes) has MD5 {digest}, but the published {name} file has {md5}: "
                "it is truncated, damaged or a different file. Delete it and download it again (or copy it again)."
            )
    return checked


def _missing(name: str, raw: Path, err: Exception | None = None) -> DatasetNotFoundError:
    why = f" and downloading it failed ({type(err).__name__}: {err})" if err else ""
    files = ", ".join(_IDX_FILES)
    return DatasetNotFoundError(
        f"{name} is not in {raw}{why}. Put the four IDX files there ({files}; the .gz versions also work), "
        f"or point --data-dir / ${DATA_DIR_ENV} at a folder that has {name}/raw/."
    )


def load_mnist(train: bool = False, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> ImageSet:
    """MNIST digits; ``train=False`` gives the 10,000 test images."""
    return load_torchvision("MNIST", train, data_dir, download)


def load_fashion_mnist(train: bool = False, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> ImageSet:
    """FashionMNIST clothes; ``train=False`` gives the 10,000 test images."""
    return load_torchvision("FashionMNIST", train, data_dir, download)


#: What reading a corrupt or foreign image file raises in PIL.
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError)


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """The fully decoded image at ``path``; ``ValueError`` naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except UNREADABLE as err:
        raise ValueError(f"cannot read {path} as an image: {err}") from None


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


def load_image_folder(root: str | os.PathLike[str], name: str | None = None) -> ImageSet:
    """Images in class sub-folders (``root/A/x.png`` ...), as 28x28 grayscale.

    Files that cannot be read as images are skipped and listed in ``skipped``
    (a warning says how many); labels are the sub-folders' indices in sorted order.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist; expected class sub-folders such as {root}/A/*.png")
    try:
        folder = datasets.ImageFolder(str(root), allow_empty=True)
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
    from skimage import data as samples  # an optional-looking import: only this loader needs it

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
