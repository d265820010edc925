"""scripts/soak_check.py as a user runs it, for seconds instead of hours: its section, JSON and figure."""

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from inference.evaluation import report  # noqa: E402
from tests.conftest import need  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import soak_check  # noqa: E402


def test_a_short_soak_writes_its_section_json_and_figure(tmp_path, data_dir):
    from bnn import save_checkpoint
    from inference.data import load_mnist
    from tests.conftest import trained_on_synthetic

    need(load_mnist, False, data_dir)
    checkpoint = save_checkpoint(
        tmp_path / "bnn.pt", trained_on_synthetic(num_fit=300, num_held_out=600, hidden_dim=16, num_samples=100, vae_epochs=1)
    )
    page, results, figure = tmp_path / "results.md", tmp_path / "soak.json", tmp_path / "soak.png"
    page.write_text("# Results\n<!-- soak:start -->\n<!-- soak:end -->\n")
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(data_dir), "--hours", str(16 / 3600), "--rate", "5"]
    argv += ["--trace-every", "2", "--page", str(page), "--json", str(results), "--figure", str(figure)]
    assert soak_check.main(argv) == 0
    soak = json.loads(results.read_text())["soak"]
    assert soak["requests"] == 80 and soak["server_errors"] == 0 and soak["wrong"] == 0
    assert len(soak["trace"]) >= 7 and soak["drift"]["rss_mib"] is not None
    section = report.between_markers(page.read_text(), "soak")
    assert re.search(r"for \d+ s, 80 requests arriving at 5 a second", section) and "MiB/hour" in section
    for figure_name in ("server RSS drift", "open descriptors drift", "threads drift", "median latency drift"):
        assert f"| {figure_name} | " in section  # each drift the JSON holds is on the page
    assert re.search(r"\| answers to good images, each interval's p50 / p99: [^|]* \| \d+ / \d+ ms \(\d+ to \d+\) \|", section)
    assert "](figures/soak.png)" in section and figure.stat().st_size > 0


def test_a_trace_of_fewer_than_four_samples_is_refused(capsys):
    with pytest.raises(SystemExit) as refused:
        soak_check.main(["--hours", "0.001", "--trace-every", "2"])
    assert refused.value.code == 2 and "4 samples at least" in capsys.readouterr().err
