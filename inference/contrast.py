"""Inputs made from training digits that no digit looks like, for the noise-contrastive prior.

Each digit of a batch becomes one of: its pixels in a random order (the same ink, no shape), its
7x7 blocks in a random order (strokes, but no digit), or the digit under heavy Gaussian noise
(clipped to [0, 1]). Nothing here comes from an evaluation set.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 7
SIDE = 28


def permute_pixels(x: Tensor) -> Tensor:
    """``(B, 784)`` -> each image's pixels in its own random order."""
    order = torch.rand(x.shape, device=x.device).argsort(-1)
    return x.gather(-1, order)


def shuffle_blocks(x: Tensor) -> Tensor:
    """``(B, 784)`` -> each image's 16 blocks of 7x7 pixels in its own random order."""
    per_side = SIDE // BLOCK
    blocks = x.reshape(-1, per_side, BLOCK, per_side, BLOCK).permute(0, 1, 3, 2, 4).reshape(x.shape[0], per_side**2, -1)
    order = torch.rand(x.shape[0], per_side**2, device=x.device).argsort(-1)
    shuffled = blocks.gather(1, order[..., None].expand_as(blocks))
    return shuffled.reshape(-1, per_side, per_side, BLOCK, BLOCK).permute(0, 1, 3, 2, 4).reshape(x.shape)


def heavy_noise(x: Tensor, low: float = 0.3, high: float = 1.0) -> Tensor:
    """``(B, 784)`` -> each image plus Gaussian noise of a standard deviation drawn in [low, high], clipped to [0, 1]."""
    scale = torch.empty(x.shape[0], 1, device=x.device).uniform_(low, high)
    return (x + scale * torch.randn_like(x)).clamp_(0.0, 1.0)


CORRUPTIONS = (permute_pixels, shuffle_blocks, heavy_noise)


def contrast_inputs(x: Tensor) -> Tensor:
    """``(B, 784)`` digits -> ``(B, 784)`` non-digits, each made by one corruption drawn at random."""
    which = torch.randint(len(CORRUPTIONS), (x.shape[0],), device=x.device)
    out = torch.empty_like(x)
    for k, corrupt in enumerate(CORRUPTIONS):
        chosen = which == k
        if chosen.any():
            out[chosen] = corrupt(x[chosen])
    return out
