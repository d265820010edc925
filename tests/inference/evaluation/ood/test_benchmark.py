"""The OOD benchmark's refusal table: one conformal gate for every score, and calibrated p-values gated as they are."""

import pytest
import torch

from inference.data import ImageSet
from inference.evaluation.ood.benchmark import REFUSAL_RATE, refusal_figures


def _set(labels):
    return ImageSet("s", torch.zeros(len(labels), 784), torch.tensor(labels))


def test_a_score_is_gated_against_the_validation_digits_and_a_p_value_at_the_rate():
    validation = torch.linspace(0.0, 1.0, 99)  # larger: more in-distribution
    scores = {"validation": validation, "MNIST": torch.tensor([0.5, -1.0, 0.5, 0.015]), "noise": torch.tensor([-5.0, 2.0])}
    labelled, ood = {"MNIST": _set([1, 2, 3, 4])}, {"noise": _set([-1, -1])}
    answers = {"MNIST": torch.tensor([1, 2, 0, 4])}
    gated = refusal_figures(scores, answers, labelled, ood)
    # Only scores below every validation digit's have a p-value of 1/100 <= 2%: -1.0 and -5.0.
    assert gated["MNIST"] == pytest.approx({"refused": 0.25, "right": 0.5, "wrong": 0.25})
    assert gated["noise"] == {"refused": 0.5}
    as_p_values = refusal_figures(scores, answers, labelled, ood, calibrated=True)
    # As p-values, 0.015 and the negative scores are at most the rate; the validation digits play no part.
    assert as_p_values["MNIST"] == pytest.approx({"refused": 0.5, "right": 0.25, "wrong": 0.25})
    assert as_p_values["noise"] == {"refused": 0.5} and REFUSAL_RATE == 0.02
