"""Stage 1, data: the training digits, image files, user input and MNIST-style preprocessing."""

from inference.data.datasets import (
    DATA_DIR_ENV,
    CorruptDatasetError,
    DatasetNotFoundError,
    ImageSet,
    load_mnist,
    load_torchvision,
    resolve_data_dir,
    split_calibration,
    torchvision_dataset,
    verify_raw_files,
)
from inference.data.images import IMAGE_SIDE, image_to_array, read_image
from inference.data.inputs import to_batch
from inference.data.preprocess import mnist_format, mnist_format_batch

__all__ = [
    "DATA_DIR_ENV",
    "IMAGE_SIDE",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageSet",
    "image_to_array",
    "load_mnist",
    "load_torchvision",
    "mnist_format",
    "mnist_format_batch",
    "read_image",
    "resolve_data_dir",
    "split_calibration",
    "to_batch",
    "torchvision_dataset",
    "verify_raw_files",
]
