"""scripts/page_check.py as a user runs it, on a few drawings: its section and JSON."""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from inference.evaluation import report  # noqa: E402
from tests.conftest import need_chromium, trained_on_synthetic  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import page_check  # noqa: E402


def test_a_quick_run_draws_on_the_page_and_writes_its_section_and_json(tmp_path):
    from bnn import save_checkpoint

    need_chromium()
    checkpoint = save_checkpoint(
        tmp_path / "bnn.pt", trained_on_synthetic(num_fit=300, num_held_out=600, hidden_dim=16, num_samples=100, vae_epochs=1)
    )
    page, results = tmp_path / "results.md", tmp_path / "page_check.json"
    page.write_text("# Results\n<!-- drawn:start -->\n<!-- drawn:end -->\n")
    argv = ["--checkpoint", str(checkpoint), "--kinds", "2", "--variants", "1", "--sample-every", "1"]
    assert page_check.main([*argv, "--page", str(page), "--json", str(results)]) == 0
    saved = json.loads(results.read_text())
    drawn = saved["drawings"]
    assert [(d["name"], d["digit"]) for d in drawn] == [("0", True), ("0", True), ("1", True), ("1", True)] + [
        (name, False) for name in list(page_check.NOT_DIGITS)[:2]
    ]
    assert all(d["page"] in ("right", "wrong", "refused") and d["shown"] for d in drawn)
    assert saved["digits, page"]["n"] == 4 and saved["not digits, python"]["n"] == 2
    assert [t["drawings"] for t in saved["browser"]["trace"]] == list(range(7))
    section = report.between_markers(page.read_text(), "drawn")
    assert "the first 2 digits and the first 2 letters and shapes" in section and "| digits | page, Chromium | 4 |" in section
    assert section.strip() == report.drawn_section(saved)  # the page renders from its JSON


def test_kinds_must_be_at_least_one(capsys):
    with pytest.raises(SystemExit) as refused:
        page_check.main(["--kinds", "0"])
    assert refused.value.code == 2 and "--kinds must be at least 1" in capsys.readouterr().err
