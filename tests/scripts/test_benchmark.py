"""The speed benchmark runs end to end on a small configuration and writes its table."""

import json

from inference.data import load_mnist
from scripts import benchmark as benchmark_script
from tests.conftest import need


def test_small_benchmark_writes_json_and_the_speed_section(tmp_path, data_dir, capsys):
    need(load_mnist, False, data_dir, False)
    page = tmp_path / "results.md"
    page.write_text("# Results\n\n## Speed\n\n<!-- speed:start -->\nold\n<!-- speed:end -->\n")
    out = tmp_path / "benchmark.json"
    argv = ["--data-dir", str(data_dir), "--train-limit", "2048", "--test-limit", "256", "--large", "2000"]
    argv += ["--repeats", "1", "--no-full-train", "--json", str(out), "--page", str(page)]
    assert benchmark_script.main(argv) == 0
    results = json.loads(out.read_text())
    assert results["epoch"]["deterministic_seconds"] > 0
    estimators = list(results["epoch"]["svi_ratio"])
    assert len(estimators) == 2 and estimators[0].startswith("default (")  # the default first, then the other estimator
    assert {e.removeprefix("default (").rstrip(")") for e in estimators} == {"local reparameterisation", "weight sampling"}
    timed = {"weights", "local", "local, calibrated rule", "local, calibrated rule as filed"}
    assert set(results["predict"]["seconds"]) == timed
    assert [m["inputs"] for m in results["memory"]] == [256, 2000]
    text = page.read_text()
    assert "old" not in text and "predict_with_abstain, median rule, method='local'" in text and "calibrated rule" in text
    assert "x the calibrated rule as issue 21 was filed" in text
    assert "SVI epoch" in capsys.readouterr().out


def test_full_train_times_the_training_script_and_reads_its_results(data_dir):
    need(load_mnist, False, data_dir, False)
    small = ["--epochs", "1", "--train-limit", "2000", "--hidden-dim", "16", "--vae-epochs", "1", "--limit", "100"]
    timed = benchmark_script.full_train(str(data_dir), [*small, "--resplits", "0"])
    assert timed["seconds"] >= timed["train_seconds"] + timed["evaluate_seconds"] > 0
    assert 0.0 <= timed["forced_accuracy"] <= 1.0
