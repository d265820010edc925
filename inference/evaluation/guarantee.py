"""An empirical check of the calibrated rule's guarantees over random re-splits of held-out and test digits.

The held-out digits and MNIST test are pooled; each re-split draws a new calibration set
of the same size from the pool and applies the gate (and the risk gate) to the rest. If the
guarantees hold, the realised false-refusal rate averages at most ``alpha``, and the realised
error among answers exceeds ``max_risk`` in at most a fraction ``delta`` of re-splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inference.calibration import risk_threshold, unfamiliarity_p_value
from inference.predictive import ABSTAIN, answer


@dataclass
class GuaranteeCheck:
    """Per re-split: the realised false-refusal rate of the gate, and the realised risk and coverage of the risk gate."""

    alpha: float
    max_risk: float
    delta: float
    calibration_size: int
    test_size: int
    false_refusal: list[float]
    risk: list[float]
    coverage: list[float]

    @property
    def mean_false_refusal(self) -> float:
        return float(np.mean(self.false_refusal))

    @property
    def risk_violations(self) -> float:
        """Fraction of re-splits whose realised risk exceeded ``max_risk`` (at most about ``delta`` if it holds)."""
        return float(np.mean(np.asarray(self.risk) > self.max_risk))

    @property
    def risk_violations_beyond_noise(self) -> float:
        """Fraction of re-splits whose realised risk exceeded ``max_risk`` by more than two binomial standard errors.

        The bound is on the risk over new digits; a re-split's realised risk on its finite test part
        also carries sampling noise of about ``sqrt(max_risk (1 - max_risk) / answered)``.
        """
        answered = np.maximum(np.asarray(self.coverage) * self.test_size, 1)
        noise = 2 * np.sqrt(self.max_risk * (1 - self.max_risk) / answered)
        return float(np.mean(np.asarray(self.risk) > self.max_risk + noise))

    def summary(self) -> dict[str, float]:
        return {
            "mean_false_refusal": self.mean_false_refusal,
            "false_refusal_q95": float(np.quantile(self.false_refusal, 0.95)),
            "mean_risk": float(np.nanmean(self.risk)),
            "risk_violations": self.risk_violations,
            "risk_violations_beyond_noise": self.risk_violations_beyond_noise,
            "mean_coverage": float(np.mean(self.coverage)),
        }


def resplit_check(
    calibration_scores: dict[str, Tensor],
    calibration_levels: Tensor,
    calibration_labels: Tensor,
    test_scores: dict[str, Tensor],
    test_levels: Tensor,
    test_labels: Tensor,
    *,
    alpha: float,
    max_risk: float,
    delta: float,
    threshold: float,
    resplits: int = 200,
    seed: int = 0,
    fisher_combination: bool = False,
) -> GuaranteeCheck:
    """Re-draw the calibration set ``resplits`` times from the pool of held-out and test digits.

    ``*_scores`` map each gate component to ``(n,)`` scores, ``*_levels`` are ``(n, C)``
    percentile probabilities and ``*_labels`` ``(n,)`` classes; ``fisher_combination`` is the calibration's
    (:func:`inference.calibration.unfamiliarity_p_value`).
    """
    scores = {k: torch.cat([calibration_scores[k].cpu(), test_scores[k].cpu()]) for k in calibration_scores}
    levels, labels = torch.cat([calibration_levels, test_levels]), torch.cat([calibration_labels, test_labels])
    # The median rule's answers do not depend on the split: computed once for the pool.
    answers, _ = answer(levels, threshold)
    has_answer, correct, confidence = answers != ABSTAIN, answers == labels, levels.max(-1).values
    n_cal = len(calibration_labels)
    generator = torch.Generator().manual_seed(seed)
    false_refusal, risk, coverage = [], [], []
    for _ in range(resplits):
        order = torch.randperm(len(labels), generator=generator)
        cal, test = order[:n_cal], order[n_cal:]
        cal_scores = {k: v[cal] for k, v in scores.items()}
        p = unfamiliarity_p_value(cal_scores, {k: v[test] for k, v in scores.items()}, fisher_combination)
        false_refusal.append((p <= alpha).float().mean().item())
        cutoff = risk_threshold(
            cal_scores,
            confidence[cal],
            answered=has_answer[cal],
            correct=correct[cal],
            alpha=alpha,
            max_risk=max_risk,
            delta=delta,
            fisher_combination=fisher_combination,
        )
        answered = (p > alpha) & has_answer[test] & (confidence[test] >= cutoff)
        coverage.append(answered.float().mean().item())
        risk.append((~correct[test][answered]).float().mean().item() if answered.any() else 0.0)
    return GuaranteeCheck(alpha, max_risk, delta, n_cal, len(labels) - n_cal, false_refusal, risk, coverage)
