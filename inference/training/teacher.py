"""Soft labels from a convolutional teacher: knowledge distillation (Hinton, Vinyals & Dean 2015).

A small CNN reads digits better than the 784-1024-10 MLP can learn to in a few minutes, because its convolutions
know that a stroke moved by a pixel is the same stroke. Its probabilities, softened by a temperature, carry that
knowledge as labels: which other digit a sloppy 7 resembles, and how much. The BNN's likelihood then scores each
training digit against ``(1 - distill) * one_hot(y) + distill * softmax(teacher_logits / T)`` (Hinton et al.'s
weighted average of the hard and the soft objective) instead of the hard label alone. The teacher trains on the
same training digits only, before the BNN, and is then dropped: prediction, the gate and checkpoints never see it.

An option, off by default: in the near-digit study the soft labels raised the digits' predictive entropy (median
0.02 -> 0.56 nats) into the band between digits and non-digits that the gate needs empty (``docs/design.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inference.rng import forked_rng
from inference.training.config import TrainConfig


class TeacherCNN(nn.Module):
    """Two 5x5 convolutions (32 and 64 channels, each ReLU and 2x2 max-pooling), 256 hidden units, ``num_classes``
    logits. ``(B, 784)`` -> ``(B, num_classes)``."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.hidden = nn.Linear(64 * 7 * 7, 256)
        self.out = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x.view(-1, 1, 28, 28))), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.out(F.relu(self.hidden(h.flatten(1))))


def train_teacher(
    images: Tensor, labels: Tensor, epochs: int, seed: int, num_classes: int = 10, batch_size: int = 128, lr: float = 2e-3
) -> TeacherCNN:
    """A :class:`TeacherCNN` fitted to ``(N, 784)`` images and ``(N,)`` labels by Adam under a one-cycle schedule."""
    generator = torch.Generator().manual_seed(seed)
    with forked_rng(images.device, seed):
        net = TeacherCNN(num_classes).to(images.device)
    optimizer = torch.optim.Adam(net.parameters(), lr)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=generator).to(images.device).split(batch_size):
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def distilled_targets(
    images: Tensor, labels: Tensor, distill: float, temperature: float, epochs: int, seed: int, num_classes: int = 10
) -> Tensor:
    """``(N, num_classes)`` label distributions for ``(N, 784)`` training images with ``(N,)`` labels: the hard label
    mixed with a share ``distill`` of the teacher's probabilities at ``temperature`` (:func:`train_teacher`, trained
    here on these images for ``epochs``)."""
    if not 0.0 < distill <= 1.0:
        raise ValueError(f"distill must be in (0, 1], got {distill}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    teacher = train_teacher(images, labels, epochs, seed, num_classes)
    with torch.no_grad():
        soft = torch.cat([(teacher(chunk) / temperature).softmax(-1) for chunk in images.split(4096)])
    return (1.0 - distill) * F.one_hot(labels, num_classes).to(soft.dtype) + distill * soft


def teacher_labels(images: Tensor, labels: Tensor, config: TrainConfig, num_classes: int) -> Tensor | None:
    """``config``'s label distributions for the training set (:func:`distilled_targets`), or None where
    ``config.distill`` is 0 (the hard labels, and no teacher)."""
    if not config.distill:
        return None
    return distilled_targets(
        images, labels, config.distill, config.distill_temperature, config.teacher_epochs, config.seed, num_classes
    )
