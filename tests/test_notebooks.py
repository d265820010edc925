"""Every notebook runs top to bottom (nbclient) with small parameters; a cell that raises fails the test."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from inference.data import load_mnist
from tests.conftest import need

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: Small parameters per notebook, injected after its "parameters" cell (as papermill does).
QUICK = {
    "01_bayesian_mlp_in_pyro": "TRAIN_LIMIT = 2_000\nEPOCHS = 2",
    "02_saying_i_dont_know": 'CHECKPOINT = "checkpoints/no-such-file.pt"\nLIMIT = 300\nSMALL_TRAIN = 2_000',
    "03_what_a_plain_network_believes": (
        'TRAIN_LIMIT = 2_000\nEPOCHS = 2\nLIMIT = 300\nCHECKPOINT = "checkpoints/no-such-file.pt"\nSMALL_TRAIN = 2_000'
    ),
}


def test_every_notebook_has_quick_parameters():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(QUICK)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUICK))
def test_notebook_runs_top_to_bottom(name, data_dir, tmp_path):
    need(load_mnist, False, data_dir, False)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit notebooks without outputs"
    where = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
    nb.cells.insert(where + 1, nbformat.v4.new_code_cell(f"{QUICK[name]}\nDATA_DIR = {str(data_dir.resolve())!r}"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [out for cell in nb.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
    assert images >= 3, "the notebook should show its figures"
