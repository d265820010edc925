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
    assert set(results["epoch"]["svi_ratio"]) == {"default (local reparameterisation)", "weight sampling"}
    assert set(results["predict"]["seconds"]) == {"weights", "local", "local, calibrated rule"}
    assert [m["inputs"] for m in results["memory"]] == [256, 2000]
    text = page.read_text()
    assert "old" not in text and "predict_with_abstain, median rule, method='local'" in text and "calibrated rule" in text
    assert "SVI epoch" in capsys.readouterr().out
