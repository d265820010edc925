"""Conformal calibration of the abstention rule on held-out training digits.

The gate asks of every input: is it as familiar as the held-out digits? Two nonconformity
scores answer, each with a conformal p-value (Bates, Candès, Lei, Romano & Sesia, "Testing
for outliers with conformal p-values"):

- the posterior predictive's **entropy** (its total uncertainty; large is unusual):
  ``p = (1 + #{calibration scores >= s}) / (n + 1)``. The noise-contrastive prior teaches the
  sampled networks to *agree* on a uniform answer for unfamiliar inputs, so their doubt shows in
  the entropy of the predictive rather than in their disagreement (mutual information);
- the input's **density**, the ELBO of a VAE trained on the training split, tested
  two-sided as a typicality test (Nalisnick et al. 2019): an input far *more* likely
  than the held-out digits (a blank page, a flat grey) is as unfamiliar as one far less
  likely. ``p = min(1, 2 min(p_low, p_high))``.

They are combined by Bonferroni, ``p = min(1, k min_j p_j)``; refusing where ``p <= alpha``
refuses an input exchangeable with the held-out digits with probability at most ``alpha``.

The optional risk gate picks the lowest confidence threshold whose error among answered
held-out digits is below ``max_risk`` with confidence ``1 - delta``: each threshold of a
fixed grid gets an exact binomial test, Bonferroni-corrected over the grid (selective
classification with guaranteed risk, Geifman & El-Yaniv 2017; Learn-then-Test,
Angelopoulos et al. 2021).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from scipy.stats import binom
from torch import Tensor

from bnn import Calibration, TrainedBNN, VAEConfig
from bnn.config import check_fields, option
from inference.data import ImageSet
from inference.density import train_vae, vae_elbo

if TYPE_CHECKING:
    from inference.predictive import AbstainResult

#: The gate's components and whether each is tested two-sided.
GATE_COMPONENTS = {"entropy": False, "density": True}
#: Confidence thresholds the risk gate may choose from, fixed before seeing any data (denser near 1,
#: where a well-trained network's confidences are).
RISK_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)


def conformal_p_values(calibration_scores: Tensor, scores: Tensor) -> Tensor:
    """``(1 + #{calibration_scores >= s}) / (n + 1)`` for every ``s`` in ``scores`` (larger scores are stranger)."""
    ordered = torch.sort(calibration_scores.double()).values
    n = ordered.shape[0]
    at_least = n - torch.searchsorted(ordered, scores.double(), side="left")
    return ((1 + at_least) / (n + 1)).float()


def two_sided_p_values(calibration_scores: Tensor, scores: Tensor) -> Tensor:
    """``min(1, 2 min(p_high, p_low))``: a score far above *or* far below the calibration scores is strange."""
    high = conformal_p_values(calibration_scores, scores)
    low = conformal_p_values(-calibration_scores, -scores)
    return (2 * torch.minimum(high, low)).clamp_max_(1.0)


def bonferroni(p_values: list[Tensor]) -> Tensor:
    """``min(1, k min_j p_j)`` over ``k`` p-values (valid however they depend on each other)."""
    return (len(p_values) * torch.stack(p_values).min(0).values).clamp_max_(1.0)


def component_p_values(calibration_scores: dict[str, Tensor], scores: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each gate component's p-value; both dicts map a name of :data:`GATE_COMPONENTS` to ``(n,)`` / ``(N,)`` scores."""
    return {
        name: (two_sided_p_values if two_sided else conformal_p_values)(calibration_scores[name].cpu(), scores[name].cpu())
        for name, two_sided in GATE_COMPONENTS.items()
    }


def gate_scores(source: Calibration | AbstainResult) -> dict[str, Tensor]:
    """The gate's scores of a calibration's held-out digits, or of a calibrated prediction's inputs."""
    scores = {name: getattr(source, name) for name in GATE_COMPONENTS}
    if any(v is None for v in scores.values()):
        raise ValueError("these results carry no density score: predict with rule='calibrated'")
    return scores


def unfamiliarity_p_value(calibration_scores: dict[str, Tensor], scores: dict[str, Tensor]) -> Tensor:
    """``(N,)``: the Bonferroni combination of the gate's p-values."""
    return bonferroni(list(component_p_values(calibration_scores, scores).values()))


def certified_threshold(
    confidence: Tensor, correct: Tensor, max_risk: float, delta: float, grid: tuple[float, ...] = RISK_GRID
) -> float:
    """The lowest confidence threshold of ``grid`` certified to keep the error among answers at most ``max_risk``.

    ``confidence`` and ``correct`` ``(n,)`` describe the held-out inputs that would be answered.
    Threshold ``t`` is certified when the exact binomial p-value ``P(Binomial(n_t, max_risk) <= errors_t)``
    is at most ``delta / len(grid)`` (``n_t`` answers at ``confidence >= t``, ``errors_t`` of them
    wrong): by Bonferroni, every certified threshold keeps its risk at most ``max_risk`` at once,
    with probability at least ``1 - delta``. Returns ``inf`` (answer nothing) if none is certified.
    """
    conf, wrong = confidence.double(), ~correct
    certified = []
    for t in grid:
        answered = conf >= t
        n, errors = int(answered.sum()), int((wrong & answered).sum())
        if n and binom.cdf(errors, n, max_risk) <= delta / len(grid):
            certified.append(t)
    return min(certified) if certified else math.inf


def risk_threshold(
    calibration_scores: dict[str, Tensor],
    confidence: Tensor,
    *,
    answered: Tensor,
    correct: Tensor,
    alpha: float,
    max_risk: float,
    delta: float,
) -> float:
    """The risk gate's confidence threshold, from the held-out digits that pass the gate and that the rule answers.

    ``calibration_scores`` are the held-out digits' gate scores; ``confidence``, ``answered`` and
    ``correct`` ``(n,)`` their highest percentile probability, whether the median rule answers them,
    and whether that answer is right. Their own gate p-values count themselves among the calibration
    scores (one more than a new input's count), which makes the gate pass them slightly more often
    than it would pass a new digit.
    """
    kept = (unfamiliarity_p_value(calibration_scores, calibration_scores) > alpha) & answered
    return certified_threshold(confidence[kept], correct[kept], max_risk, delta)


@dataclass(frozen=True)
class CalibrationConfig:
    """How the calibration is made; every field is also a command-line flag."""

    held_out: int = option(5000, "nonnegative_int", "training images held out to calibrate the rule (0: no calibration)")
    vae_epochs: int = option(10, "positive_int", "epochs of the VAE whose ELBO is the gate's density")
    vae_particles: int = option(8, "positive_int", "importance samples per image of the VAE's ELBO")

    def __post_init__(self) -> None:
        check_fields(self)


def held_out_size(num_images: int, requested: int) -> int:
    """How many of ``num_images`` training images a quick run holds out: a tenth, but at least 1,000 (fewer
    leave the two-sided density test no p-value small enough to refuse at alpha = 0.01), at most half, and
    never more than ``requested``."""
    return min(requested, max(num_images // 10, 1000), num_images // 2)


def smallest_gate_p_value(n: int) -> float:
    """The smallest p-value the gate can give with ``n`` held-out digits (the two-sided, Bonferroni-corrected density)."""
    return min(1.0, 2 * len(GATE_COMPONENTS) / (n + 1))


def calibrate(
    trained: TrainedBNN,
    held_out: ImageSet,
    training: ImageSet,
    config: CalibrationConfig | None = None,
    *,
    num_samples: int = 100,
    percentile: float = 50.0,
    split_seed: int = 0,
    seed: int = 0,
    progress: bool = True,
    vae_config: VAEConfig | None = None,
) -> Calibration:
    """Fit the density model on ``training`` and score ``held_out``; attach the calibration to ``trained`` and return it.

    ``held_out`` must be digits that neither the network nor the VAE was trained on, drawn
    from the distribution the guarantee is for (:func:`inference.data.split_calibration`).
    ``num_samples`` and ``percentile`` must be those the predictions will use.
    """
    from inference.predictive import predict_with_abstain  # predictive imports this module

    config = config or CalibrationConfig(held_out=len(held_out))
    if len(held_out) < 1 or (held_out.labels < 0).any():
        raise ValueError("held_out must hold at least one labelled image")
    if smallest_gate_p_value(len(held_out)) > 0.01:
        warnings.warn(
            f"with {len(held_out)} held-out digits the gate's p-values are at least {smallest_gate_p_value(len(held_out)):.3f}: "
            "at alpha below that, the density can refuse nothing. Hold out at least 1,000 digits.",
            stacklevel=2,
        )
    device = trained.device
    on_device = ImageSet(training.name, training.images.to(device), training.labels)
    vae = train_vae(on_device, config.vae_epochs, seed=seed, progress=progress, config=vae_config)
    result = predict_with_abstain(trained, held_out.images, num_samples, percentile=percentile, rule="median", seed=seed)
    density = vae_elbo(vae, held_out.images.to(device), config.vae_particles, seed=seed).cpu()
    trained.calibration = Calibration(
        entropy=result.entropy,
        mutual_information=result.mutual_information,
        density=density,
        percentile_probs=result.percentile_probs,
        labels=held_out.labels.clone(),
        vae=vae,
        num_samples=num_samples,
        percentile=float(percentile),
        vae_particles=config.vae_particles,
        split_size=len(held_out),
        split_seed=split_seed,
    )
    trained.calibration.validate()
    return trained.calibration
