"""Prediction over collections too large to hold in memory: image folders of any size, streamed in chunks.

A :class:`torch.utils.data.Dataset` yields one image at a time already in MNIST's format (for
files: read, decoded and preprocessed, in DataLoader worker processes when ``workers`` > 0);
:func:`predict_stream` batches them, predicts each batch and yields one record per image, so
memory stays bounded by the batch whatever the collection's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from bnn import TrainedBNN
from inference.data import image_to_array, mnist_format, read_image
from inference.predictive.predict import predict_with_abstain
from inference.predictive.result import unreadable_record

#: One streamed image: ``(pixels (784,) float32, has_ink, error message or "")``.
Item = tuple[torch.Tensor, bool, str]


class ImageFiles(Dataset):
    """Image files, each read and brought to MNIST's format on access (unreadable files give an error, not a raise)."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], preprocess: bool = True):
        self.paths, self.preprocess = list(paths), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        try:
            image = read_image(self.paths[i])
            if self.preprocess:
                digit, has_ink = mnist_format(image)
            else:
                digit, has_ink = image_to_array(image), True
        except ValueError as err:
            return torch.zeros(784), False, str(err)
        return torch.from_numpy(np.ascontiguousarray(digit, dtype=np.float32).reshape(784)), has_ink, ""


def _collate(items: list[Item]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    pixels, inked, errors = zip(*items, strict=True)
    return torch.stack(pixels), torch.tensor(inked, dtype=torch.bool), list(errors)


def predict_stream(
    model: TrainedBNN,
    dataset: Dataset,
    *,
    batch_size: int = 512,
    workers: int = 0,
    progress: bool = False,
    **predict_kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """One record per image of ``dataset`` (items as :class:`ImageFiles` yields them), in order.

    Records: ``index``, ``answer`` (words), ``prediction`` (None when refused), ``candidates``
    (best first), ``reason``, ``p_value``; an image that could not be read has reason
    ``"unreadable"`` and its ``error``. ``predict_kwargs`` go to :func:`predict_with_abstain`.
    """
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be positive and workers >= 0, got {batch_size} and {workers}")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    bar = tqdm(total=len(dataset), unit="image", disable=not progress)  # type: ignore[arg-type]
    start = 0
    for pixels, has_ink, errors in loader:
        readable = torch.tensor([not e for e in errors], dtype=torch.bool)
        records: list[dict[str, Any]] = [{"index": start + i, **unreadable_record(e)} for i, e in enumerate(errors)]
        if readable.any():
            result = predict_with_abstain(model, pixels[readable], has_ink=has_ink[readable], **predict_kwargs)
            for i, record in zip(readable.nonzero().flatten().tolist(), result.records(), strict=True):
                records[i] = {"index": start + i, **record}
        yield from records
        start += len(errors)
        bar.update(len(errors))
    bar.close()
