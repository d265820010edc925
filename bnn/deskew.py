"""Moment deskewing: the slant of each 28x28 image removed before the model reads it (LeCun et al. 1998)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional

SIDE = 28
#: The largest shear undone, in pixels of sideways shift per pixel of height (45 degrees): 99.9% of MNIST's training
#: digits slant less; a wider-than-tall shape (a dash) would otherwise be sheared out of the frame.
MAX_SHEAR = 1.0
#: Images resampled at a time: each needs a 28x28x2 sampling grid.
CHUNK = 4096


def check_deskewable(input_dim: int, deskew: bool) -> None:
    """Raise ``ValueError`` where a config asks to deskew inputs that are not 28x28 images."""
    if deskew and input_dim != SIDE * SIDE:
        raise ValueError(f"deskew needs {SIDE}x{SIDE} images (input_dim {SIDE * SIDE}), got input_dim {input_dim}")


def slant(images: Tensor, max_shear: float = MAX_SHEAR) -> tuple[Tensor, Tensor]:
    """``(B, 784)`` images -> their shear ``cov(x, y) / var(y)`` of the ink (clamped to ``max_shear``) and the row
    of their centre of mass, each ``(B,)``; a blank image has shear 0."""
    img = images.reshape(-1, SIDE, SIDE)
    coords = torch.arange(SIDE, device=images.device, dtype=images.dtype)
    safe_mass = img.sum((1, 2)).clamp_min(1e-6)
    centre_y = (img.sum(2) * coords).sum(-1) / safe_mass
    centre_x = (img.sum(1) * coords).sum(-1) / safe_mass
    dy = coords[None, :, None] - centre_y[:, None, None]
    dx = coords[None, None, :] - centre_x[:, None, None]
    var_y = (img * dy**2).sum((1, 2)) / safe_mass
    cov_xy = (img * dx * dy).sum((1, 2)) / safe_mass
    shear = torch.where(var_y > 1e-6, cov_xy / var_y.clamp_min(1e-6), torch.zeros_like(var_y))
    return shear.clamp(-max_shear, max_shear), centre_y


def deskew(images: Tensor, max_shear: float = MAX_SHEAR) -> Tensor:
    """``(B, 784)`` images in [0, 1] -> the same images with each row shifted sideways so that the ink's slant
    (:func:`slant`) is 0 about its centre of mass; rows and ink mass keep their places, sampled bilinearly, blank
    beyond the frame. A label-free normalisation of the writer's slant, applied to every input alike (training
    digits, contrast inputs, held-out digits and what a user asks about)."""
    if images.dim() != 2 or images.shape[1] != SIDE * SIDE:
        raise ValueError(f"deskew takes (B, {SIDE * SIDE}) images, got {tuple(images.shape)}")
    return torch.cat([_deskew(chunk, max_shear) for chunk in images.split(CHUNK)]) if len(images) else images


def _deskew(images: Tensor, max_shear: float) -> Tensor:
    shear, centre_y = slant(images, max_shear)
    # Output -> input in grid units (pixel centres at (2i + 1) / 28 - 1): x_in = x_out + shear * (y_out - centre), y_in = y_out.
    centres = (torch.arange(SIDE, device=images.device, dtype=images.dtype) * 2 + 1) / SIDE - 1
    centre_y = (centre_y + 0.5) * 2 / SIDE - 1
    x_in = centres[None, None, :] + shear[:, None, None] * (centres[None, :, None] - centre_y[:, None, None])
    grid = torch.stack([x_in, centres[None, :, None].expand_as(x_in)], -1)  # (B, 28, 28, 2)
    square = images.reshape(-1, 1, SIDE, SIDE)
    return functional.grid_sample(square, grid, mode="bilinear", padding_mode="zeros", align_corners=False).view(images.shape)
