"""The calibrated gate's arithmetic: conformal p-values, their combination and the risk gate (tensors in, tensors out).

The gate asks of every input: is it as familiar as the held-out digits? Nonconformity
scores answer, each with a conformal p-value (Bates, Candès, Lei, Romano & Sesia, "Testing
for outliers with conformal p-values"):

- the posterior predictive's **entropy** (its total uncertainty; large is unusual):
  ``p = (1 + #{calibration scores >= s}) / (n + 1)``. The noise-contrastive prior teaches the
  sampled networks to *agree* on a uniform answer for unfamiliar inputs, so their doubt shows in
  the entropy of the predictive rather than in their disagreement (mutual information);
- the input's **density**, the ELBO of a VAE trained on the training split, tested
  two-sided as a typicality test (Nalisnick et al. 2019): an input far *more* likely
  than the held-out digits (a blank page, a flat grey) is as unfamiliar as one far less
  likely. ``p = min(1, 2 min(p_low, p_high))``;
- with a class-conditional density (the default), the **class doubt**, ``-log p(answered class | x)`` under the same
  density model read as a generative classifier (:func:`inference.calibration.class_doubt`; large is unusual): a digit
  is explained far better by its own class than by any other, a shape that is no digit about as badly by several.
  Calibrations made before it hold no such scores, and their gate has the first two components only.

The components are combined by Fisher's statistic ``-2 sum_j log p_j`` (``fisher_combination``, the default),
which is large where they are small together; the statistic gets its own conformal p-value against the
held-out digits' statistics (:func:`fisher_p_values`; Fisher's chi-square table would need the scores
independent, this needs only exchangeability). Or by Bonferroni, ``min(1, k min_j p_j)``. Either way,
refusing where the combined ``p <= alpha`` refuses an input exchangeable with the held-out digits with
probability at most ``alpha``, however the scores depend on each other. Fisher's spends the whole of
``alpha`` and refuses an input that is somewhat unusual on several scores; Bonferroni's refuses only one
that is extreme on one.

The optional risk gate picks the lowest confidence threshold whose error among answered
held-out digits is below ``max_risk`` with confidence ``1 - delta``: each threshold of a
fixed grid gets an exact binomial test, Bonferroni-corrected over the grid (selective
classification with guaranteed risk, Geifman & El-Yaniv 2017; Learn-then-Test,
Angelopoulos et al. 2021).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

#: The gate's components and whether each is tested two-sided; ``class_doubt`` is optional (a calibration may hold none).
GATE_COMPONENTS = {"entropy": False, "density": True, "class_doubt": False}
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
    """Each gate component's p-value; ``calibration_scores`` maps the components in use (names of
    :data:`GATE_COMPONENTS`) to ``(n,)`` scores, ``scores`` at least those to ``(N,)`` scores."""
    return {
        name: (two_sided_p_values if GATE_COMPONENTS[name] else conformal_p_values)(held_out.cpu(), scores[name].cpu())
        for name, held_out in calibration_scores.items()
    }


def gate_scores(source: Any) -> dict[str, Tensor]:
    """The gate's scores (attributes named as :data:`GATE_COMPONENTS`) of a :class:`bnn.Calibration`'s held-out
    digits, or of a calibrated prediction's inputs (an :class:`inference.AbstainResult`); an optional component
    the source holds no scores for is left out."""
    scores = {name: getattr(source, name, None) for name in GATE_COMPONENTS}
    if scores["density"] is None:
        raise ValueError("these results carry no density score: predict with mode='calibrated'")
    return {name: value for name, value in scores.items() if value is not None}


def unfamiliarity_p_value(
    calibration_scores: dict[str, Tensor], scores: dict[str, Tensor], fisher_combination: bool = False
) -> Tensor:
    """``(N,)``: the gate's p-value, the combination of the components' p-values.

    ``calibration_scores`` map each component in use to the held-out digits' ``(n,)`` scores. With ``fisher_combination``,
    Fisher's combination, itself given a conformal p-value (:func:`fisher_p_values`); else Bonferroni's.
    """
    if fisher_combination:
        return fisher_p_values(calibration_scores, scores)
    return bonferroni(list(component_p_values(calibration_scores, scores).values()))


def fisher_p_values(calibration_scores: dict[str, Tensor], scores: dict[str, Tensor]) -> Tensor:
    """``(N,)``: Fisher's combination of the components' p-values, itself given a conformal p-value.

    Every held-out digit gets Fisher's statistic ``-2 sum_j log p_j`` from its components' p-values among the held-out
    digits (counting itself, over ``n + 1``); a new input gets it from its own conformal p-values; the gate's
    p-value is ``(1 + #{digits whose statistic is at least the input's}) / (n + 1)``.

    This is never below the full (transductive) conformal p-value, which ranks the input among the ``n + 1``
    statistics of the digits and the input with every p-value taken in that set of ``n + 1``: adding the input can
    only raise a digit's counts, so only lower its statistic. That p-value is valid under exchangeability (the
    statistic is a symmetric function of the set), so this one is too, and it costs two sorted searches per input
    instead of one comparison per input and digit. On independent scores it refuses within a digit or two of it.
    """
    n = len(next(iter(calibration_scores.values())))
    # log p for every count a member can have: count / (n + 1), two-sided min(1, 2 count / (n + 1)).
    counts = torch.arange(n + 2, dtype=torch.float64)
    log_p = {False: (counts / (n + 1)).log(), True: (2 * counts / (n + 1)).clamp_max(1.0).log()}
    digits_stat, input_stat = 0.0, 0.0
    for name, held_out in calibration_scores.items():
        two_sided = GATE_COMPONENTS[name]
        held_out, new = held_out.cpu().double(), scores[name].cpu().double()
        ordered = torch.sort(held_out).values
        high = n - torch.searchsorted(ordered, held_out, side="left")  # digits at least as high, itself included
        low = torch.searchsorted(ordered, held_out, side="right")
        input_high = 1 + n - torch.searchsorted(ordered, new, side="left")
        input_low = 1 + torch.searchsorted(ordered, new, side="right")
        table = log_p[two_sided]
        digits_stat = digits_stat - 2 * table[torch.minimum(high, low) if two_sided else high]
        input_stat = input_stat - 2 * table[torch.minimum(input_high, input_low) if two_sided else input_high]
    at_least = n - torch.searchsorted(torch.sort(digits_stat).values, input_stat, side="left")
    return ((1 + at_least) / (n + 1)).float()


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
    from scipy.stats import binom  # imported here: scipy.stats adds a second to every start-up

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
    fisher_combination: bool = False,
) -> float:
    """The risk gate's confidence threshold, from the held-out digits that pass the gate and that the rule answers.

    ``calibration_scores`` are the held-out digits' gate scores; ``confidence``, ``answered`` and
    ``correct`` ``(n,)`` their highest percentile probability, whether the median rule answers them,
    and whether that answer is right. Their own gate p-values count themselves among the calibration
    scores (one more than a new input's count), which makes the gate pass them slightly more often
    than it would pass a new digit.
    """
    kept = (unfamiliarity_p_value(calibration_scores, calibration_scores, fisher_combination) > alpha) & answered
    return certified_threshold(confidence[kept], correct[kept], max_risk, delta)
