"""Scores and metrics shared by the evaluation and the benchmarks (scikit-learn's metric functions).

Convention: a detector's score is higher for inputs it thinks are in-distribution;
in-distribution is the positive class unless a function says otherwise.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def _array(x: ArrayLike) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)).astype(np.float64)


def _labelled(in_scores: ArrayLike, out_scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s_in, s_out = _array(in_scores), _array(out_scores)
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise ValueError("scores must be finite")
    return np.concatenate([np.ones(len(s_in)), np.zeros(len(s_out))]), np.concatenate([s_in, s_out])


def auroc(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
    """Area under the ROC curve of telling in-distribution (positive) from OOD inputs by score."""
    labels, scores = _labelled(in_scores, out_scores)
    return float(roc_auc_score(labels, scores))


def aupr_in(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
    """Area under the precision-recall curve with in-distribution as the positive class (average precision)."""
    labels, scores = _labelled(in_scores, out_scores)
    return float(average_precision_score(labels, scores))


def aupr_out(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
    """Area under the precision-recall curve with OOD as the positive class (scores negated)."""
    labels, scores = _labelled(in_scores, out_scores)
    return float(average_precision_score(1 - labels, -scores))


def fpr_at_95_tpr(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
    """Fraction of OOD inputs accepted when the threshold keeps 95% of in-distribution inputs."""
    labels, scores = _labelled(in_scores, out_scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(fpr[np.searchsorted(tpr, 0.95, side="left")])


def ood_metrics(in_scores: ArrayLike, out_scores: ArrayLike) -> dict[str, float]:
    """AUROC, AUPR-in, AUPR-out and FPR at 95% TPR in one dict."""
    return {
        "auroc": auroc(in_scores, out_scores),
        "aupr_in": aupr_in(in_scores, out_scores),
        "aupr_out": aupr_out(in_scores, out_scores),
        "fpr95": fpr_at_95_tpr(in_scores, out_scores),
    }


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, bins: int = 15) -> float:
    """ECE: the bin-size-weighted mean gap between confidence and accuracy over ``bins`` equal-width bins."""
    conf, hit = _array(confidence), _array(correct)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - hit[mask].mean())
    return float(total)


def risk_coverage(score: ArrayLike, correct: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)`` when answering the highest-scoring inputs first; risk is the error rate on them."""
    order = np.argsort(-_array(score), kind="stable")
    errors = 1.0 - _array(correct)[order]
    n = np.arange(1, len(errors) + 1)
    return n / len(errors), np.cumsum(errors) / n


def aurc(score: ArrayLike, correct: ArrayLike) -> float:
    """Area under the risk-coverage curve (mean risk over all coverages; lower is better)."""
    return float(risk_coverage(score, correct)[1].mean())
