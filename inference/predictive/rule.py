"""The decision rule: its settings (:class:`Rule`), the median rule's answer, and the reasons for refusing.

Two modes decide from the same sampled networks:

- ``"median"``, the reference notebook's: a digit is a *candidate* for an input when its
  ``percentile``-th (by default the median) probability across the networks exceeds ``threshold``;
  the answer is the candidate with the highest such probability, and an input without candidates is refused;
- ``"calibrated"``: the same candidates, behind a gate that refuses *unfamiliar* inputs by a conformal
  p-value computed against held-out digits (:mod:`inference.calibration`), and optionally a confidence
  threshold that keeps the error among answers below ``max_risk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from bnn.config import check_fields, option
from inference.posterior import NUM_SAMPLES, percentile_levels

#: Value of ``prediction`` for an input the model refuses to answer.
ABSTAIN = -1

#: ``AbstainResult.reason`` codes, and what each means.
ANSWERED, NO_CANDIDATE, UNFAMILIAR, TOO_UNCERTAIN, NO_INK = 0, 1, 2, 3, 4
REASONS = ("answered", "no candidate", "unfamiliar input", "too uncertain", "no ink")
#: Why the model said "I don't know", per reason code, for people.
EXPLANATIONS = (
    "",
    "no digit is likely enough across the networks",
    "this doesn't look like a digit",
    "not sure enough to answer",
    "there is no ink: draw or upload a digit",
)

#: How the rule decides: the reference median rule alone, or behind the calibrated gate.
Mode = Literal["median", "calibrated"]
MODES = ("median", "calibrated")


@dataclass(frozen=True)
class Rule:
    """The decision rule's settings; every field is also a command-line flag.

    ``alpha``, ``max_risk`` and ``delta`` apply to the calibrated rule only.
    """

    num_samples: int = option(NUM_SAMPLES, "positive_int", "networks sampled from the posterior per input")
    threshold: float = option(0.2, "unit", "a digit is a candidate when its percentile probability exceeds this")
    percentile: float = option(50.0, "percent", "percentile of each digit's probability across networks (50: the median)")
    alpha: float = option(0.02, "open_unit", "calibrated rule: refuse inputs whose conformal p-value is <= alpha")
    max_risk: float | None = option(
        None, "open_unit", "calibrated rule: also refuse answers below the confidence that keeps the error <= this", True
    )
    delta: float = option(0.1, "open_unit", "calibrated rule: the max_risk bound holds with probability 1 - delta")

    def __post_init__(self) -> None:
        check_fields(self)


DEFAULT_RULE = Rule()


def answer(level: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The rule's choice from percentile probabilities ``level`` ``(N, C)``.

    Returns the prediction ``(N,)``, the candidate with the highest level (``ABSTAIN`` where
    there is none), and the candidates ``(N, C)``, the classes whose level exceeds ``threshold``.
    """
    candidates = level > threshold
    best = level.masked_fill(~candidates, -1.0).argmax(-1)
    return torch.where(candidates.any(-1), best, torch.full_like(best, ABSTAIN)), candidates


def decide(
    samples: Tensor, threshold: float = DEFAULT_RULE.threshold, percentile: float = DEFAULT_RULE.percentile
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the abstention rule to per-network probabilities.

    Parameters
    ----------
    samples
        ``(S, N, C)`` probabilities from ``S`` networks.

    Returns
    -------
    prediction ``(N,)`` (``ABSTAIN`` where no candidate), candidates ``(N, C)``, percentile probabilities ``(N, C)``.
    """
    Rule(threshold=threshold, percentile=percentile)
    level = percentile_levels(samples, percentile)
    prediction, candidates = answer(level, threshold)
    return prediction, candidates, level
