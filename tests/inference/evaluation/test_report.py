"""The report module: strict JSON, marker sections, and the study's choice made on held-out figures only."""

import argparse
import json
import re
from pathlib import Path

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


def test_a_new_evaluation_keeps_every_section_a_script_writes_on_the_results_page():
    # Each script rewrites its own section; a page rebuilt by `make train` must carry all of them over.
    root = Path(__file__).parents[3]
    sources = [*root.glob("scripts/*.py"), *root.glob("inference/**/*.py")]
    written = {m for path in sources for m in re.findall(r'replace_between_markers\((?:args\.)?page, "(\w+)"', path.read_text())}
    assert "soak" in written and "drawn" in written  # the pattern still finds the scripts' calls
    assert written == set(report.PAGE_SECTIONS)


def test_a_missing_results_page_stops_a_script_as_its_arguments_are_read(tmp_path):
    page = tmp_path / "results.md"
    with pytest.raises(argparse.ArgumentTypeError, match="no page at .*results.md"):
        report.section_page(str(page))
    page.write_text("# Results\n")
    assert report.section_page(str(page)) == str(page) and report.section_page("") == ""
    # Every script that rewrites a section of a page reads its --page that way, not after its run.
    root = Path(__file__).parents[3]
    for script in root.glob("scripts/*.py"):
        source = script.read_text()
        if "replace_between_markers(args.page" in source or "publish_speed(" in source:
            assert re.search(r'"--page",[^)]*type=report\.section_page', source), script.name


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


def test_the_page_s_memory_is_reported_with_its_drift_per_100_drawings():
    from inference.evaluation.report.serving import browser_memory
    from inference.evaluation.soak import drift

    trace = [{"drawings": 10 * i, "js_heap_mib": 2.0 + 0.001 * i, "dom_nodes": 81, "event_listeners": 33} for i in range(21)]
    browser = {"trace": trace, "drift": {k: drift(trace, k, along="drawings", per=100) for k in trace[0] if k != "drawings"}}
    text = browser_memory(browser)
    assert "over its 200 drawings" in text and "read 21 times; the page driven by input events alone" in text
    assert "JavaScript heap 2.000 → 2.020 MiB, drift +0.010 MiB per 100 drawings (+0.010 to +0.010)" in text
    assert "DOM nodes 81 → 81, drift +0 per 100 drawings" in text and "event listeners 33 → 33" in text
