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
from torch import Tensor

from inference.data import ImageSet
from inference.rng import forked_rng
from inference.training.classifier import CNN, train_classifier
from inference.training.config import TrainConfig

#: The teacher's convolutions and features: wider than the OOD benchmark's CNN, to read the digits well in 3 epochs.
TEACHER_CHANNELS, TEACHER_HIDDEN = (32, 64), 256


def train_teacher(images: Tensor, labels: Tensor, epochs: int, seed: int, num_classes: int = 10) -> CNN:
    """A :class:`~inference.training.classifier.CNN` of the teacher's widths fitted to ``(N, 784)`` images and
    ``(N,)`` labels by Adam at 2e-3 under a one-cycle schedule, its initialisation seeded by ``seed``."""
    with forked_rng(images.device, seed):
        net = CNN(TEACHER_CHANNELS, TEACHER_HIDDEN, num_classes).to(images.device)
    data = ImageSet("teacher", images, labels)
    return train_classifier(net, data, epochs, lr=2e-3, seed=seed, progress=False, one_cycle=True)


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
