"""ODIN (Liang et al., 2018): max-softmax at a high temperature of a slightly perturbed input, from pytorch-ood."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inference.evaluation.ood.detectors.base import Detector, pytorch_ood


class ODIN(Detector):
    """Score: the max-softmax at temperature ``T`` of the input moved ``eps`` against the gradient of its own answer's loss.

    The paper's defaults (``T = 1000``, ``eps = 0.0014``, in pixel units of [0, 1] images); the
    paper tuned both on out-of-distribution data, which this benchmark does not do.
    """

    def __init__(self, net: nn.Module, temperature: float = 1000.0, eps: float = 0.0014, name: str = "ODIN") -> None:
        self.net, self.name = net, name
        self.detector = pytorch_ood().ODIN(net, eps=eps, temperature=temperature)

    def score(self, images: Tensor, batch_size: int = 2048) -> Tensor:
        # Not `batched`, which turns gradients off: ODIN needs the gradient with respect to the input.
        return torch.cat([-self.detector.predict(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
