"""Label-preserving augmentation of training digits: random translations, the affine and elastic distortions of
Simard, Steinkraus & Platt (2003), and a wider pen, as priors on what still counts as the same digit."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional

SIDE = 28


def random_shift(x: Tensor, max_shift: int) -> Tensor:
    """``(B, 784)`` digits, each moved by its own random offset of up to ``max_shift`` pixels in x and in y.

    Pixels moved in from outside the frame are blank, as MNIST's border is.
    """
    if max_shift <= 0:
        return x
    size = SIDE + 2 * max_shift
    padded = functional.pad(x.reshape(-1, SIDE, SIDE), (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, x.shape[0]), device=x.device)
    rows = (offsets[0][:, None] + torch.arange(SIDE, device=x.device))[:, :, None]  # (B, 28, 1)
    cols = (offsets[1][:, None] + torch.arange(SIDE, device=x.device))[:, None, :]  # (B, 1, 28)
    flat = padded.reshape(x.shape[0], size * size)
    return flat.gather(1, (rows * size + cols).reshape(x.shape[0], -1))


def _uniform(n: int, half_width: float, device: torch.device) -> Tensor:
    return (torch.rand(n, device=device) * 2 - 1) * half_width


def _base_grid(device: torch.device) -> Tensor:
    """``(784, 3)``: every pixel's centre in grid units (x, y, 1), as ``affine_grid`` with ``align_corners=False`` has them."""
    centres = (torch.arange(SIDE, device=device, dtype=torch.float32) * 2 + 1) / SIDE - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten(), torch.ones(SIDE * SIDE, device=device)], -1)


def grid_from(theta: Tensor) -> Tensor:
    """``(B, 2, 3)`` affine maps (output -> input grid units) -> ``(B, 28, 28, 2)`` sampling grids."""
    return (_base_grid(theta.device) @ theta.transpose(1, 2)).view(-1, SIDE, SIDE, 2)


def affine_grid(n: int, device: torch.device, *, rotation: float, scale: float, shear: float, shift: float) -> Tensor:
    """``(n, 28, 28, 2)`` sampling grids of random affine maps: a rotation of up to ``rotation`` degrees, a scale
    within ``1 +- scale``, a shear of up to ``shear`` and a translation of up to ``shift`` pixels."""
    angle = _uniform(n, math.radians(rotation), device)
    zoom = 1.0 + _uniform(n, scale, device)
    skew = _uniform(n, shear, device)
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    theta = torch.empty(n, 2, 3, device=device)
    # Output -> input coordinates: (rotation @ shear) / zoom, then the shift (grid units: 2 / 28 per pixel).
    theta[:, 0, 0], theta[:, 0, 1] = cos, cos * skew - sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, sin * skew + cos
    theta[:, :, 2] = _uniform(2 * n, 2 * shift / SIDE, device).view(n, 2)
    return grid_from(theta)


def gaussian_smoothing(sigma: float, device: torch.device) -> Tensor:
    """``(28, 28)``: the matrix that smooths a row (or, transposed, a column) by a Gaussian of ``sigma`` pixels."""
    taps = torch.arange(SIDE, device=device, dtype=torch.float32)
    weights = torch.exp(-((taps[:, None] - taps[None, :]) ** 2) / (2 * sigma**2))
    radius = torch.arange(-SIDE + 1, SIDE, device=device, dtype=torch.float32)
    return weights / torch.exp(-(radius**2) / (2 * sigma**2)).sum()  # a full kernel's sum: the frame's edge fades


def elastic_field(n: int, device: torch.device, *, alpha: float, sigma: float) -> Tensor:
    """``(n, 28, 28, 2)`` random displacement fields in grid units: uniform noise in [-1, 1] smoothed by a Gaussian
    of ``sigma`` pixels and scaled by ``alpha`` pixels (Simard et al. 2003)."""
    smooth = gaussian_smoothing(sigma, device)
    noise = torch.rand(n, 2, SIDE, SIDE, device=device) * 2 - 1
    field = smooth @ noise @ smooth.T  # separable: rows, then columns
    return field.permute(0, 2, 3, 1) * (2 * alpha / SIDE)


def resample(x: Tensor, grid: Tensor) -> Tensor:
    """``(B, 784)`` images sampled bilinearly at ``grid`` ``(B, 28, 28, 2)``; outside the frame is blank."""
    out = functional.grid_sample(x.view(-1, 1, SIDE, SIDE), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(x.shape)


#: The label-preserving distortion's strengths: small affine maps, and Simard et al.'s elastic field (alpha 34, sigma 4
#: on 29x29 digits). The MNIST authors' own test digits vary this much in slant, size and stroke.
DISTORTION = {"rotation": 12.0, "scale": 0.12, "shear": 0.25, "shift": 2.0, "alpha": 34.0, "sigma": 4.0}


def random_distortion(x: Tensor, strength: float = 1.0) -> Tensor:
    """``(B, 784)`` digits, each under its own random affine map and elastic field, scaled by ``strength`` (0: none)."""
    if strength <= 0:
        return x
    d = {k: v * strength if k != "sigma" else v for k, v in DISTORTION.items()}
    n, device = x.shape[0], x.device
    grid = affine_grid(n, device, rotation=d["rotation"], scale=d["scale"], shear=d["shear"], shift=d["shift"])
    grid = grid + elastic_field(n, device, alpha=d["alpha"], sigma=d["sigma"])
    return resample(x, grid)


def wider_pen(x: Tensor) -> Tensor:
    """``(B, 784)`` drawings -> the same drawings with a pen one pixel wider on every side (a 3x3 maximum filter)."""
    return functional.max_pool2d(x.view(-1, 1, SIDE, SIDE), 3, stride=1, padding=1).reshape(x.shape)


def random_wider_pen(x: Tensor, share: float) -> Tensor:
    """``(B, 784)`` drawings, each redrawn by :func:`wider_pen` with probability ``share`` (0: none)."""
    if share <= 0:
        return x
    chosen = torch.rand(x.shape[0], device=x.device) < share
    return torch.where(chosen[:, None], wider_pen(x), x)


def normalize_box(x: Tensor, box: float = 20.0, ink: float = 0.2) -> Tensor:
    """``(B, 784)`` -> each image's ink scaled to fit a ``box`` x ``box`` square and centred by mass, as MNIST's are
    (and as :func:`inference.data.mnist_format` does to a user's image)."""
    img = x.view(-1, SIDE, SIDE)
    coords = torch.arange(SIDE, device=x.device, dtype=x.dtype)
    extent = []
    for axis in (1, 2):  # rows (y), then columns (x)
        present = img.amax(dim=3 - axis) > ink  # (B, 28)
        first = torch.where(present.any(-1), present.float().argmax(-1), torch.zeros_like(present[:, 0], dtype=torch.long))
        last = SIDE - 1 - present.flip(-1).float().argmax(-1)
        extent.append((first.to(x.dtype), last.to(x.dtype)))
    size = torch.maximum(extent[0][1] - extent[0][0], extent[1][1] - extent[1][0]) + 1
    zoom = (size / box).clamp_min(1e-3)
    mass = img.sum((1, 2)).clamp_min(1e-6)
    centre_y = (img.sum(2) * coords).sum(-1) / mass
    centre_x = (img.sum(1) * coords).sum(-1) / mass
    # Output pixel u maps to input pixel centre + (u - 13.5... ) * zoom; in grid units (align_corners=False).
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = zoom
    theta[:, 0, 2] = (centre_x + 0.5) * 2 / SIDE - 1 - zoom * ((14.0 + 0.5) * 2 / SIDE - 1)
    theta[:, 1, 2] = (centre_y + 0.5) * 2 / SIDE - 1 - zoom * ((14.0 + 0.5) * 2 / SIDE - 1)
    return resample(x, grid_from(theta))
