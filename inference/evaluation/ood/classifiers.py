"""Deterministic baselines: the same 784-1024-10 MLP (the CNN and the loop that trains both are
:mod:`inference.training.classifier`'s), temperature scaling, and batched evaluation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inference.data import ImageSet


class MLP(nn.Module):
    """784 -> 1024 (ReLU) -> 10, the Bayesian network's architecture with point weights."""

    def __init__(self, hidden_dim: int = 1024) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU())
        self.out = nn.Linear(hidden_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        """``(B, 784)`` -> ``(B, hidden_dim)``: the hidden layer."""
        return self.hidden(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 784)`` -> logits ``(B, 10)``."""
        return self.out(self.features(x))


@torch.no_grad()
def batched(fn, images: Tensor, batch_size: int = 2048) -> Tensor:
    """``fn`` applied to ``images`` in batches, concatenated (no gradients)."""
    return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def fit_temperature(net: nn.Module, held_out: ImageSet) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on ``held_out`` (L-BFGS)."""
    logits = batched(net, held_out.images)
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), held_out.labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())
