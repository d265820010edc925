"""Training data: MNIST from :mod:`torchvision.datasets` (downloaded when missing and the network
allows it, checked against the published MD5s), as in-memory tensors of flattened 28x28 images in [0, 1],
and the seeded split that holds digits out for calibration.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

#: Environment variable that sets the data directory when no flag is given.
DATA_DIR_ENV = "BNN_DATA_DIR"

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TORCHVISION = ("MNIST", "FashionMNIST", "KMNIST")


def torchvision_dataset(name: str) -> type:
    """torchvision's dataset class ``name``, imported on first use (torchvision adds seconds to every start-up)."""
    if name not in _TORCHVISION:
        raise KeyError(name)
    from torchvision import datasets

    return getattr(datasets, name)


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
    cls = torchvision_dataset(name)
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
    expected = dict(_EXTRACTED_MD5.get(name, {}))
    expected.update({file: md5 for file, md5 in torchvision_dataset(name).resources})
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
