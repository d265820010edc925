"""Metrics against answers worked out by hand."""

import numpy as np
import pytest
import torch

from inference.evaluation import metrics


def test_perfect_separation():
    m = metrics.ood_metrics(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0.1, 0.2]))
    assert m == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0}


def test_reversed_scores():
    assert metrics.auroc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert metrics.fpr_at_95_tpr([0.1, 0.2], [0.9, 0.8]) == 1.0


def test_fpr_at_95_tpr_counts_the_ood_inputs_above_the_5th_percentile_of_in_scores():
    inside = np.arange(100) / 100.0  # threshold keeping 95% of them: 0.05
    outside = np.array([0.0, 0.01, 0.5, 0.9])  # two of four score above 0.05
    assert metrics.fpr_at_95_tpr(inside, outside) == pytest.approx(0.5)


def test_aupr_in_and_out_take_different_positives():
    inside, outside = [0.9, 0.6], [0.7, 0.1, 0.05, 0.0]
    # In positive, ranked: 0.9(in) 0.7(out) 0.6(in): AP = (1/1 + 2/3) / 2
    assert metrics.aupr_in(inside, outside) == pytest.approx((1 + 2 / 3) / 2)
    # OOD positive, ranked by -score: 0.0, 0.05, 0.1 (all out), 0.6 (in), 0.7 (out): AP = (1 + 1 + 1 + 4/5) / 4
    assert metrics.aupr_out(inside, outside) == pytest.approx((3 + 4 / 5) / 4)


def test_ece_of_a_calibrated_and_an_overconfident_classifier():
    confidence = np.full(10, 0.7)
    assert metrics.expected_calibration_error(confidence, [1] * 7 + [0] * 3) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(np.full(4, 0.99), [1, 0, 0, 0]) == pytest.approx(0.74)


def test_risk_coverage_answers_the_surest_first():
    coverage, risk = metrics.risk_coverage([0.9, 0.1, 0.5], [1, 0, 0])
    assert coverage.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert risk.tolist() == pytest.approx([0.0, 0.5, 2 / 3])
    assert metrics.aurc([0.9, 0.1, 0.5], [1, 0, 0]) == pytest.approx((0 + 0.5 + 2 / 3) / 3)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="finite"):
        metrics.auroc([float("nan")], [0.0])
