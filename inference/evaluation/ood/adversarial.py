"""Gradient-sign attacks on a differentiable classifier, in pixel space (L-infinity budget ``eps``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def fgsm(net: nn.Module, images: Tensor, labels: Tensor, eps: float) -> Tensor:
    """Fast gradient sign method (Goodfellow et al., 2015): one step of size ``eps``, clipped to [0, 1]."""
    return bim(net, images, labels, eps, steps=1, step_size=eps)


def bim(net: nn.Module, images: Tensor, labels: Tensor, eps: float, steps: int = 10, step_size: float | None = None) -> Tensor:
    """Basic iterative method (Kurakin et al., 2017): ``steps`` sign steps, projected to the ``eps`` ball and [0, 1]."""
    step_size = eps / 4 if step_size is None else step_size
    adversarial = images.clone()
    for _ in range(steps):
        adversarial.requires_grad_(True)
        loss = nn.functional.cross_entropy(net(adversarial), labels)
        (grad,) = torch.autograd.grad(loss, adversarial)
        with torch.no_grad():
            adversarial = adversarial + step_size * grad.sign()
            adversarial = torch.min(torch.max(adversarial, images - eps), images + eps).clamp_(0.0, 1.0)
    return adversarial.detach()
