"""A deterministic convolutional digit reader and its plain training loop, shared by the distillation option's
teacher (:mod:`inference.training.teacher`) and the OOD benchmark's CNN baseline."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from inference.data import ImageSet


class CNN(nn.Module):
    """The classic two-convolution MNIST network (LeNet-style): 5x5 convolutions of ``channels`` (each ReLU and 2x2
    max-pooling), ``hidden`` features, ``num_classes`` logits. ``(B, 784)`` -> ``(B, num_classes)``."""

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        first, second = channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, first, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(first, second, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(second * 7 * 7, hidden), nn.ReLU(),
        )  # fmt: skip
        self.out = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 784)`` -> ``(B, hidden)``."""
        return self.conv(x.reshape(-1, 1, 28, 28))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def train_classifier(
    net: nn.Module,
    data: ImageSet,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    one_cycle: bool = False,
) -> nn.Module:
    """Minimise cross-entropy with Adam on shuffled minibatches (the learning rate under a one-cycle schedule peaking
    at ``lr`` with ``one_cycle``); returns ``net`` in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * -(-len(data) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps) if one_cycle else None
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
            if schedule is not None:
                schedule.step()
    return net.eval()
