"""Label-preserving augmentation of training digits: random translations, as an invariance prior."""

from __future__ import annotations

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
