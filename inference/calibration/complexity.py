"""An input's complexity: the length of its lossless compression, in nats (Serrà et al. 2020).

A likelihood model prefers simple inputs (a few thin strokes, a blank page) whatever it was trained on;
the compressed length measures that simplicity with no model at all. The density's score corrected
for it, ``ELBO(x) + L(x)``, is the log-ratio of the model's likelihood to a universal compressor's
("Input complexity and out-of-distribution detection with likelihood-based generative models").
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch
from torch import Tensor


def compressed_nats(images: Tensor, level: int = 9) -> Tensor:
    """``(N, 784)`` images in [0, 1] -> ``(N,)``: each one's zlib-compressed length (8-bit pixels), in nats."""
    pixels = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    lengths = np.fromiter((len(zlib.compress(row.tobytes(), level)) for row in pixels), dtype=np.float64, count=len(pixels))
    return torch.from_numpy(lengths * 8 * math.log(2)).float()
