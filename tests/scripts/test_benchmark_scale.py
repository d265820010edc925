"""The scale and peer benchmarks run end to end on small configurations and write what they measured."""

import json

import pytest

from bnn import save_checkpoint
from scripts import benchmark_peers, benchmark_predict


def test_prediction_at_scale_reports_throughput_and_peak_memory(tmp_path, data_dir, mnist_model):
    checkpoint = save_checkpoint(tmp_path / "bnn.pt", mnist_model)
    page = tmp_path / "results.md"
    page.write_text("# Results\n\n## Scale\n\n<!-- scale:start -->\nold\n<!-- scale:end -->\n")
    out = tmp_path / "predict.json"
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(data_dir), "--files", "600", "--generated", "700"]
    assert benchmark_predict.main([*argv, "--results", str(out), "--page", str(page)]) == 0
    cases = json.loads(out.read_text())["cases"]
    assert [(c["case"], c["images"], c["workers"]) for c in cases] == [
        ("files", 600, 0),
        ("files", 600, 2),
        ("generated", 700, 0),
    ]
    assert all(c["images_per_second"] > 0 and c["peak_rss_mib"] > 100 for c in cases)
    assert cases[0]["answered"] == cases[1]["answered"] > 500  # dark-on-light digits: read, preprocessed, mostly answered
    text = page.read_text()
    assert "old" not in text and "| 600 | PNG files (read + preprocessed) | 2 workers |" in text


def test_peer_comparison_runs_and_writes_its_page(tmp_path, data_dir, mnist_train):
    """``mnist_train`` skips the test where MNIST is missing (fails it under BNN_REQUIRE_DATA=1), as for the others."""
    pytest.importorskip("pyro")
    page, out = tmp_path / "peers.md", tmp_path / "peers.json"
    argv = ["--data-dir", str(data_dir), "--epochs", "1", "--limit", "600", "--repeats", "1", "--no-compile"]
    assert benchmark_peers.main([*argv, "--only", "ours", "pyro", "--page", str(page), "--results", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [c["key"] for c in results["contenders"]] == ["ours", "pyro"]
    ours = results["contenders"][0]
    assert 0 <= ours["forced_accuracy"] <= 1 and set(ours["refused"]) == {"MNIST", "notMNIST", "FashionMNIST", "uniform noise"}
    assert "| this project (default) |" in page.read_text() and "1.00x" in page.read_text()


def test_the_versions_recorded_are_those_of_every_pinned_distribution(monkeypatch):
    assert benchmark_peers.compared_distributions() == ["torch", "pyro-ppl", "tyxe", "bayesian-torch", "torch-uncertainty"]
    monkeypatch.setattr(benchmark_peers, "OWN_ENVIRONMENTS", {"uq": ["lightning-uqbox[cpu] == 0.2", "pyro-ppl>=1.9"]})
    assert benchmark_peers.compared_distributions() == ["torch", "pyro-ppl", "lightning-uqbox"]
    assert set(benchmark_peers.versions()) == {"torch", "pyro-ppl", "lightning-uqbox"}


def test_a_contender_with_its_own_environment_gets_it_once_and_the_project_keeps_its_own(tmp_path, monkeypatch):
    import sys

    pinned = dict(benchmark_peers.OWN_ENVIRONMENTS)
    assert pinned["tyxe"]
    monkeypatch.setattr(benchmark_peers, "OWN_ENVIRONMENTS", {"apart": []})
    monkeypatch.setattr(benchmark_peers, "ENVIRONMENT_OF", {"peer": "apart"})
    monkeypatch.setattr(benchmark_peers, "HARNESS", [])
    assert benchmark_peers.environment_python("ours", tmp_path) == sys.executable
    python = benchmark_peers.environment_python("peer", tmp_path)
    assert python == str(tmp_path / "apart" / "bin" / "python") and python != sys.executable
    stamp = tmp_path / "apart" / ".installed"
    made = stamp.stat().st_mtime_ns
    assert benchmark_peers.environment_python("peer", tmp_path) == python and stamp.stat().st_mtime_ns == made

    # The pins of a contender's own environment are nowhere in the project's dependencies.
    import tomllib

    project = tomllib.loads((benchmark_peers.ROOT / "pyproject.toml").read_text())["project"]
    declared = " ".join(project["dependencies"] + sum(project["optional-dependencies"].values(), []))
    for pins in pinned.values():
        assert not any(pin.split("==")[0] in declared for pin in pins if not pin.startswith("pyro-ppl"))
