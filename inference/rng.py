"""Running a block on a copy of torch's random state, so that seeded draws leave the global stream untouched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def forked_rng(device: torch.device, seed: int | None = None) -> Iterator[None]:
    """Run the block on a fork of the CPU (and ``device``'s CUDA) random state, seeded with ``seed`` if given."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            # The generators in the fork only: torch.manual_seed would also queue a seed for every CUDA
            # device, with a formatted stack trace, on each call (a tenth of a one-image prediction).
            torch.random.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
        yield
