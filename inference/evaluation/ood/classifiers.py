"""Deterministic baselines: the same 784-1024-10 MLP and a small two-conv CNN, trained with Adam."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

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


class CNN(nn.Module):
    """The classic two-convolution MNIST network (LeNet-style, 16 and 32 channels), 128 features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(),
        )  # fmt: skip
        self.out = nn.Linear(128, 10)

    def features(self, x: Tensor) -> Tensor:
        """``(B, 784)`` -> ``(B, 128)``."""
        return self.conv(x.reshape(-1, 1, 28, 28))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


def train_classifier(
    net: nn.Module, data: ImageSet, epochs: int = 3, batch_size: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = True
) -> nn.Module:
    """Minimise cross-entropy with Adam on shuffled minibatches; returns ``net`` in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for idx in tqdm(
            order.split(batch_size), desc=f"{type(net).__name__} epoch {epoch + 1}", disable=not progress, leave=False
        ):
            loss = nn.functional.cross_entropy(net(data.images[idx]), data.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


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
