"""The OOD benchmark runs end to end on a small configuration: table, findings, JSON, page and figures."""

import json

import pytest

from inference.data import load_mnist
from inference.evaluation.sets import OOD_SETS
from scripts import benchmark_ood
from tests.conftest import need


def _no_bare_constants(name):
    raise AssertionError(f"the JSON holds a bare {name}")


def test_small_ood_benchmark(tmp_path, data_dir):
    need(load_mnist, False, data_dir, False)
    page, out = tmp_path / "ood.md", tmp_path / "ood.json"
    argv = ["--data-dir", str(data_dir), "--checkpoint", str(tmp_path / "bnn.pt"), "--train-limit", "2000", "--limit", "200"]
    argv += ["--classifier-epochs", "1", "--vae-epochs", "1", "--gmm-components", "2", "--noise-size", "200"]
    argv += ["--adversarial-images", "100", "--no-progress", "--json", str(out), "--page", str(page)]
    assert benchmark_ood.main(argv) == 0
    results = json.loads(out.read_text(), parse_constant=_no_bare_constants)
    detectors = set(results["table"])
    assert {"BNN max median", "BNN -mutual info", "MLP max-softmax", "MLP temperature-scaled", "CNN max-softmax"} <= detectors
    assert {"VAE ELBO", "MLP features GMM", "MLP features Mahalanobis"} <= detectors
    assert {"MLP energy", "MLP ODIN", "MLP features KNN", "MLP ViM"} <= detectors
    for row in results["table"].values():
        assert set(row) == set(OOD_SETS)
        for m in row.values():
            assert 0 <= m["auroc"] <= 1 and 0 <= m["fpr95"] <= 1
    table = results["table"]
    # Figures, not just ranges: the Bayesian network's scores beat max-softmax of a plain MLP on letters, and
    # every Bayesian score separates noise.
    for name in ("BNN -entropy", "BNN calibrated p-value"):
        assert table[name]["notMNIST"]["auroc"] > table["MLP max-softmax"]["notMNIST"]["auroc"], name
        assert table[name]["uniform noise"]["auroc"] > 0.95, name
    # Every detector gates an answer at one validation refusal rate: about 2% of MNIST test, all of the noise.
    assert set(results["refusals"]) == detectors
    for name, row in results["refusals"].items():
        assert set(row) == {"MNIST", "USPS", *OOD_SETS}, name
        for digits in ("MNIST", "USPS"):
            assert row[digits]["refused"] + row[digits]["right"] + row[digits]["wrong"] == pytest.approx(1), name
        assert row["MNIST"]["refused"] < 0.15, name
    for name in ("BNN -entropy", "MLP features Mahalanobis"):
        assert results["refusals"][name]["uniform noise"]["refused"] > 0.95, name
    f = results["findings"]
    assert 0 <= f["likelihood_paradox"]["auroc_fashion_vs_mnist"] <= 1
    assert set(f["adversarial"]) == {"FGSM eps=0.1", "BIM eps=0.1", "FGSM eps=0.2", "BIM eps=0.2"}
    text = page.read_text()
    assert "## AUROC" in text and "## Refused when each detector refuses 2%" in text and "Likelihood paradox" in text
    assert (tmp_path / "ood_roc.png").stat().st_size > 1000 and (tmp_path / "ood_risk_coverage.png").is_file()
