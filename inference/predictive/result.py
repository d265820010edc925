"""What the predictive decided, per input: :class:`AbstainResult`, and its plain per-image records."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from inference.predictive.rule import ABSTAIN, ANSWERED, EXPLANATIONS, REASONS, Mode, answer


@dataclass
class AbstainResult:
    """What :func:`predict_with_abstain` decided, per input (``N`` inputs, ``C`` classes).

    Attributes
    ----------
    prediction
        ``(N,)`` int64: the chosen class, or ``ABSTAIN`` (-1).
    abstained
        ``(N,)`` bool: True where the model said "I don't know".
    reason
        ``(N,)`` int64: why (``ANSWERED``, ``NO_CANDIDATE``, ``UNFAMILIAR``, ``TOO_UNCERTAIN``, or ``NO_INK``
        for a blank image under ``preprocess="mnist"``); see :meth:`reasons`.
    candidates
        ``(N, C)`` bool: the classes whose percentile probability exceeds the threshold.
    percentile_probs
        ``(N, C)``: each class's ``percentile``-th probability across the networks.
    mean_probs
        ``(N, C)``: the posterior predictive (mean over networks); its argmax is the forced answer.
    entropy
        ``(N,)``: entropy of the posterior predictive in nats (total uncertainty).
    mutual_information
        ``(N,)``: mutual information between the label and the weights in nats,
        ``entropy - mean over networks of each network's entropy`` (how much the networks disagree).
    mode
        ``"median"`` or ``"calibrated"``: how the rule decided.
    p_value
        ``(N,)``, calibrated rule only: the conformal p-value of the input being as familiar as
        the held-out digits; the gate refuses where ``p_value <= alpha``.
    density
        ``(N,)``, calibrated rule only: the VAE's ELBO of the input in nats.
    samples
        ``(S, N, C)`` per-network probabilities, only when asked for.
    images
        ``(N, 784)``: the images the networks saw, only with ``preprocess="mnist"``.
    class_doubt
        ``(N,)``, calibrated rule with a calibration that holds it: ``-log p(answered class | x)`` under the VAE read
        as a generative classifier, in nats (:func:`inference.calibration.class_doubt`).
    """

    prediction: Tensor
    abstained: Tensor
    reason: Tensor
    candidates: Tensor
    percentile_probs: Tensor
    mean_probs: Tensor
    entropy: Tensor
    mutual_information: Tensor
    mode: Mode
    threshold: float
    percentile: float
    alpha: float | None = None
    p_value: Tensor | None = None
    density: Tensor | None = None
    samples: Tensor | None = None
    images: Tensor | None = None
    class_doubt: Tensor | None = None

    def __len__(self) -> int:
        return self.prediction.shape[0]

    @property
    def forced_prediction(self) -> Tensor:
        """``(N,)``: the argmax of the mean probability, answering every input."""
        return self.mean_probs.argmax(-1)

    @property
    def score(self) -> Tensor:
        """``(N,)``: the highest percentile probability (the median rule's confidence; higher = more familiar)."""
        return self.percentile_probs.max(-1).values

    @property
    def median_prediction(self) -> Tensor:
        """``(N,)``: what the reference median rule answers (the best candidate, or ``ABSTAIN``), whatever ``mode`` was."""
        return answer(self.percentile_probs, self.threshold)[0]

    @property
    def rule(self) -> Mode:
        """Deprecated name of :attr:`mode`."""
        warnings.warn("AbstainResult.rule is now AbstainResult.mode", DeprecationWarning, stacklevel=2)
        return self.mode

    def reasons(self) -> list[str]:
        """Every input's reason in words (``"answered"``, ``"no candidate"``, ``"unfamiliar input"``, ...)."""
        return [REASONS[code] for code in self.reason.tolist()]

    def candidate_sets(self) -> list[list[int]]:
        """Every input's candidate classes, best first, as Python lists."""
        order = self.percentile_probs.argsort(-1, descending=True)
        return [[c for c in row if chosen[c]] for row, chosen in zip(order.tolist(), self.candidates.tolist(), strict=True)]

    def answers(self) -> list[str]:
        """Every input's answer in words: ``"7"``, ``"3 or 5"`` (the best candidate first) or "I don't know — why"."""
        texts = []
        for code, candidates in zip(self.reason.tolist(), self.candidate_sets(), strict=True):
            texts.append(" or ".join(map(str, candidates)) if code == ANSWERED else f"I don't know — {EXPLANATIONS[code]}")
        return texts

    def records(self) -> list[dict[str, Any]]:
        """One plain record per input, as the page, ``bnn-abstain predict --json/--csv`` and streaming give it:
        ``answer`` (words), ``prediction`` (None when refused), ``candidates`` (best first), ``reason`` and
        ``p_value`` (None under the median rule, or where it is not a number)."""
        p_values = [None] * len(self) if self.p_value is None else self.p_value.tolist()
        rows = zip(self.answers(), self.prediction.tolist(), self.candidate_sets(), self.reasons(), p_values, strict=True)
        return [
            {
                "answer": text,
                "prediction": None if prediction == ABSTAIN else prediction,
                "candidates": candidates,
                "reason": reason,
                "p_value": None if p is None or math.isnan(p) else round(p, 6),
            }
            for text, prediction, candidates, reason, p in rows
        ]


def unreadable_record(error: str) -> dict[str, Any]:
    """The record of an image that could not be read: :meth:`AbstainResult.records`' fields, empty, and ``error``."""
    return {"answer": None, "prediction": None, "candidates": [], "reason": "unreadable", "p_value": None, "error": error}
