"""The methods a user would pick instead of the BNN, trained on the same digits with the same budget.

- **deep ensemble**: 5 deterministic 784-1024-10 MLPs from different seeds, probabilities averaged
  (Lakshminarayanan et al. 2017);
- **MC dropout**: the same MLP with dropout 0.5 on its hidden layer, kept on at test time, 100 passes
  averaged (Gal & Ghahramani 2016);
- **outlier exposure**: one deterministic MLP trained with this project's contrast inputs, pushed to a
  uniform answer on them (Hendrycks et al. 2019): the ablation that removes the posterior and keeps
  everything else;
- **MLP**: one deterministic MLP, the floor.

Every network trains as the BNN does: Adam at lr 0.002, batches of 1,024, 30 epochs, the same
55,000 training digits. After each epoch, training stops the clock and the forced accuracy on
MNIST test is measured, for the time to 98%. Nothing is chosen by that figure.

Every contender is compared by one score, the predictive entropy (larger: stranger), at one
refusal rate: a one-score conformal gate at alpha 0.02 on the held-out validation digits' entropies
(:func:`inference.calibration.conformal_p_values`, as the OOD benchmark's), so the BNN, the
ensemble and MC dropout are calibrated the same way. And by the BNN's own gate (:func:`gated_figures`): its
entropy beside the density of the class it answers (and the class doubt, where the BNN's calibration has it), under
the one density model the BNN's calibration trains, combined by Fisher's statistic among the same validation digits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from bnn.model import soft_cross_entropy
from inference.calibration import conformal_p_values, unfamiliarity_p_value
from inference.data import ImageSet
from inference.posterior import entropy
from inference.training import TrainConfig
from inference.training.contrast import contrast_batch, prepare_contrast

#: The digits' classes: every contender's output width.
NUM_CLASSES = 10
#: The fraction of held-out validation digits every contender refuses.
REFUSAL_RATE = 0.02
#: What every network's training shares with the BNN's default.
EPOCHS, BATCH_SIZE, LR = 30, 1024, 2e-3
ENSEMBLE_SIZE, DROPOUT, PASSES, OE_WEIGHT = 5, 0.5, 100, 0.5
#: The BNN's default training, whose kinds of contrast inputs the outlier-exposure ablation shares.
BNN_TRAINING = TrainConfig()


class DropoutMLP(nn.Module):
    """784 -> 1024 (ReLU, dropout ``p``) -> 10; ``p = 0`` is the plain MLP."""

    def __init__(self, p: float = 0.0, hidden_dim: int = 1024) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU(), nn.Dropout(p), nn.Linear(hidden_dim, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 784)`` -> logits ``(B, 10)``."""
        return self.net(x)


@dataclass
class Trajectory:
    """Training seconds (clock stopped for the measurements) and forced MNIST-test accuracy after each epoch."""

    seconds: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def add(self, seconds: float, accuracy: float) -> None:
        self.seconds.append((self.seconds[-1] if self.seconds else 0.0) + seconds)
        self.accuracy.append(accuracy)

    def seconds_to(self, accuracy: float) -> float | None:
        """Training seconds until the first epoch at ``accuracy`` or above (None: never)."""
        return next((s for s, a in zip(self.seconds, self.accuracy, strict=True) if a >= accuracy), None)


@torch.no_grad()
def predictive(nets: list[nn.Module], x: Tensor, passes: int = 1, batch_size: int = 4096) -> Tensor:
    """``(N, 784)`` -> ``(N, 10)``: the probabilities averaged over ``nets`` and, per net, over ``passes`` forward passes
    (with dropout on when ``passes > 1``)."""
    out = []
    for start in range(0, len(x), batch_size):
        chunk, total = x[start : start + batch_size], 0.0
        for net in nets:
            net.train(passes > 1)
            for _ in range(passes):
                total = total + torch.softmax(net(chunk), -1)
        out.append(total / (len(nets) * passes))
    for net in nets:
        net.eval()
    return torch.cat(out)


def train_networks(
    train_set: ImageSet,
    test_set: ImageSet,
    count: int = 1,
    dropout: float = 0.0,
    oe_weight: float = 0.0,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> tuple[list[nn.Module], Trajectory]:
    """Train ``count`` MLPs in lockstep (an ensemble's accuracy after epoch e needs every member's epoch e).

    The accuracy after each epoch is that of the averaged members with dropout off (the usual
    weight-scaling approximation: 100 passes per epoch would cost more than the training).

    With ``oe_weight``, a quarter of each batch is made into non-digits by :func:`contrast_batch`, the same
    kinds as the BNN's default training makes, and pushed towards the uniform answer, as the BNN's
    noise-contrastive prior does.
    """
    nets, optimizers, generators = [], [], []
    for member in range(count):
        torch.manual_seed(seed + 1000 * member)
        nets.append(DropoutMLP(dropout))
        optimizers.append(torch.optim.Adam(nets[-1].parameters(), lr=LR))
        generators.append(torch.Generator().manual_seed(seed + 1000 * member))
    if oe_weight:
        prepare_contrast(BNN_TRAINING)
    trajectory = Trajectory()
    for _ in range(epochs):
        started = time.perf_counter()
        for net, optimizer, generator in zip(nets, optimizers, generators, strict=True):
            net.train()
            for idx in torch.randperm(len(train_set), generator=generator).split(BATCH_SIZE):
                x, y = train_set.images[idx], train_set.labels[idx]
                loss = nn.functional.cross_entropy(net(x), y)
                if oe_weight:
                    made, targets = contrast_batch(x, y, BNN_TRAINING, NUM_CLASSES)
                    loss = loss + oe_weight * soft_cross_entropy(net(made), targets).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        seconds = time.perf_counter() - started
        accuracy = (predictive(nets, test_set.images).argmax(-1) == test_set.labels).float().mean().item()
        trajectory.add(seconds, accuracy)
    return nets, trajectory


def set_figures(probs: Tensor, labels: Tensor, validation_entropy: Tensor, rate: float = REFUSAL_RATE) -> dict[str, Any]:
    """Refused and answered-wrong (labels -1: no digit, every answer wrong), and the entropy scores, under the
    one-score conformal gate on ``validation_entropy``: refused when the entropy's p-value is at most ``rate``."""
    strangeness = entropy(probs)
    answered = conformal_p_values(validation_entropy, strangeness) > rate
    wrong = answered & (probs.argmax(-1) != labels)
    out: dict[str, Any] = {"refused": (~answered).float().mean().item(), "wrong": wrong.float().mean().item()}
    if (labels >= 0).all():
        out["forced_accuracy"] = (probs.argmax(-1) == labels).float().mean().item()
    out["entropy"] = strangeness
    return out


def gated_figures(
    probs: Tensor,
    labels: Tensor,
    density_scores: dict[str, Tensor],
    held_out: dict[str, Tensor],
    alpha: float = REFUSAL_RATE,
) -> dict[str, float]:
    """Refused and answered-wrong (labels -1: no digit) under the calibrated rule's gate, given any contender's
    ``(N, 10)`` probabilities and the density model's ``(N,)`` scores of each input under the class it answers (their
    argmax): ``"density"``, and ``"class_doubt"`` where the gate has it. The entropy's and those scores' conformal
    p-values among the validation digits' own ``held_out`` scores (the same names, each ``(n,)``, under each digit's
    answered class) are combined by Fisher's statistic (:func:`inference.calibration.fisher_p_values`); refused where
    the p-value is at most ``alpha``, else answered with the argmax."""
    scores = {"entropy": entropy(probs), **density_scores}
    answered = unfamiliarity_p_value(held_out, scores, fisher_combination=True) > alpha
    wrong = answered & (probs.argmax(-1) != labels)
    return {"refused": (~answered).float().mean().item(), "wrong": wrong.float().mean().item()}
