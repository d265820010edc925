"""The contenders benchmark runs end to end on a small configuration: every contender, every set, JSON and page,
and aggregates its JSON."""

import json

from inference.data import load_mnist
from inference.evaluation.sets import DIGIT_SETS, OOD_SETS
from scripts import benchmark_contenders
from tests.conftest import need


def test_small_contenders_benchmark(tmp_path, data_dir):
    need(load_mnist, False, data_dir, False)
    page, out = tmp_path / "contenders.md", tmp_path / "contenders.json"
    argv = ["--data-dir", str(data_dir), "--epochs", "1", "--train-limit", "2000", "--limit", "150", "--held-out", "1000"]
    assert benchmark_contenders.main([*argv, "--json", str(out), "--page", str(page)]) == 0
    results = json.loads(out.read_text())
    assert len(results["contenders"]) == 5
    for row in results["contenders"].values():
        assert set(row["sets"]) == {"MNIST", *OOD_SETS, *DIGIT_SETS}
        assert 0 < row["sets"]["MNIST"]["refused"] < 0.2 and row["train_seconds"] > 0
        assert all(0 <= f["auroc"] <= 1 for name, f in row["sets"].items() if name in OOD_SETS)
    assert set(results["bnn_calibrated_rule"]) == {"MNIST", *OOD_SETS, *DIGIT_SETS}
    for row in results["contenders"].values():  # every contender behind the calibrated rule's gate too
        assert set(row["gated"]) == set(row["sets"]) and 0 < row["gated"]["MNIST"]["refused"] < 0.2
    assert "## Verdict" in page.read_text() and "the same 2,000 training digits" in page.read_text()
    assert "## Verdict behind the calibrated rule's gate" in page.read_text()
    assert "of the 1,000 held-out validation digits" in page.read_text()
    seeds_page = tmp_path / "seeds.md"  # one run aggregates too: every figure is that run's
    assert benchmark_contenders.main(["--aggregate", str(out), "--seeds-page", str(seeds_page)]) == 0
    assert "seeds 0 (1 epochs each" in seeds_page.read_text() and "## Verdict" in seeds_page.read_text()
