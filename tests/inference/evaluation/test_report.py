"""The report module: strict JSON, marker sections, and the study's choice made on held-out figures only."""

import json

import pytest

from inference.evaluation import report
from inference.evaluation.study import Trial, select


def test_json_is_strict_with_nan_as_null(tmp_path):
    path = report.write_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}}, tmp_path / "x.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": {"d": 2}}


def test_a_section_between_markers_is_replaced_and_the_rest_kept(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("head\n<!-- speed:start -->\nold\n<!-- speed:end -->\ntail\n")
    report.replace_between_markers(page, "speed", "new")
    assert page.read_text() == "head\n<!-- speed:start -->\nnew\n<!-- speed:end -->\ntail\n"
    assert report.between_markers(page.read_text(), "speed") == "new"
    with pytest.warns(UserWarning, match="no <!-- other:start -->"):
        report.replace_between_markers(page, "other", "x")


def _trial(name, accuracy, abstention, corrupted, test_notmnist):
    validation = {"forced_accuracy": accuracy, "abstention": abstention, "corrupted_refused": corrupted}
    return Trial(name, 0, {}, 1.0, validation, {"forced_accuracy": 0.98, "notMNIST refused": test_notmnist})


def test_the_study_chooses_on_held_out_figures_alone():
    trials = [
        _trial("baseline", 0.990, 0.01, 0.50, 0.50),
        _trial("too costly", 0.985, 0.01, 0.99, 0.99),  # loses 0.5 points of held-out accuracy
        _trial("abstains too much", 0.990, 0.05, 0.95, 0.95),
        _trial("good", 0.989, 0.02, 0.80, 0.10),  # the worst on the test letters: the choice must not look
    ]
    assert select(trials) == "good"
    page = report.study_page(trials, "good", "f.png")
    assert "**Chosen: good.**" in page and "| **good** |" in page


def test_mutation_section_reports_the_score_its_interval_and_the_survivors():
    from scipy.stats import binomtest

    counts = {"killed": 8, "survived": 2, "timeout": 1, "no tests": 0, "not checked": 0}
    interval = binomtest(8, 10).proportion_ci(method="wilson")
    survivors = ["bnn.model.x_forward__mutmut_3", "bnn.model.x_forward__mutmut_7"]
    text = report.mutation_section(total=100, tested=11, seed=0, counts=counts, interval=interval, survivors=survivors)
    assert "**Score: 80.0%** (95% Wilson interval 49.0%–94.3%)" in text
    assert "random sample of 11 (seed 0)" in text and "| `bnn.model.x_forward` | 2 |" in text


def test_the_study_compares_configurations_on_the_seeds_they_share():
    trials = [
        _trial("baseline", 0.990, 0.01, 0.50, 0.5),
        _trial("a", 0.990, 0.01, 0.90, 0.5),
        _trial("b", 0.990, 0.01, 0.91, 0.5),
    ]
    extra = _trial("b", 0.990, 0.01, 0.10, 0.5)  # a poor second seed of "b" that "a" never ran
    extra.seed = 1
    assert select([*trials, extra]) == "b"
