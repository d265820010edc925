"""Scores and metrics shared by the evaluation and the benchmarks.

Convention: a detector's score is higher for inputs it thinks are in-distribution.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from torch import Tensor


def auroc(in_scores: Tensor | np.ndarray, out_scores: Tensor | np.ndarray) -> float:
    """Area under the ROC curve of telling in-distribution (positive) from OOD inputs by score."""
    s_in, s_out = np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)
    labels = np.concatenate([np.ones(len(s_in)), np.zeros(len(s_out))])
    return float(roc_auc_score(labels, np.concatenate([s_in, s_out])))
