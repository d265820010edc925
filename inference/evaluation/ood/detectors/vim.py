"""Virtual-logit matching (ViM, Wang et al., 2022) on a classifier's features and last layer, from pytorch-ood."""

from __future__ import annotations

from torch import nn

from inference.evaluation.ood.detectors.base import FeatureDetector, pytorch_ood


class ViM(FeatureDetector):
    """Score: the energy of the logits minus the scaled norm of the features outside their principal subspace.

    ``net`` needs ``features`` and a last linear layer ``out``. The principal subspace has
    ``dim`` dimensions; the paper's rule for features narrower than 1,500 is half their width
    (512 of the MLP's 1,024), fixed before any figure was seen.
    """

    def __init__(self, net: nn.Module, dim: int | None = None, name: str = "ViM") -> None:
        weight, bias = net.out.weight, net.out.bias
        dim = weight.shape[1] // 2 if dim is None else dim
        super().__init__(net, pytorch_ood().ViM(None, d=dim, w=weight, b=bias), name)
