"""Run inside a fresh virtual environment with the wheel installed: import every module and predict.

Run from outside the repository, so that the imports come from the installed wheel, not the source tree.
"""

import importlib
import pkgutil
import shutil
import subprocess
import sys
from importlib.resources import files

import torch

import bnn
import inference

modules = []
for package in (bnn, inference):
    assert "site-packages" in package.__file__, f"{package.__name__} imported from {package.__file__}, not the wheel"
    modules.append(package.__name__)
    modules += [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
for name in modules:
    if not name.endswith("__main__"):  # that one runs the command
        importlib.import_module(name)
required = {
    "inference.evaluation.ood.detectors.bayesian",
    "inference.evaluation.report.results",
    "inference.calibration.conformal",
    "bnn.vae",
    "inference.commands.predict",
    "inference.web.app",
    "inference.training.lightning",
    "inference.predictive.streaming",
}
missing = required - set(modules)
assert not missing, f"the wheel lacks {sorted(missing)}"

from bnn import BNNConfig, TrainedBNN  # noqa: E402
from inference import predict_with_abstain  # noqa: E402

model = TrainedBNN.untrained(BNNConfig(hidden_dim=32, num_data=100), seed=0)
result = predict_with_abstain(model, torch.rand(4, 28, 28), num_samples=10, mode="median")
assert len(result) == 4 and torch.isfinite(result.mean_probs).all()
print(f"wheel OK: imported {len(modules)} modules and predicted on {len(result)} images (python {sys.version.split()[0]})")

assert "Draw a digit" in files("inference.web").joinpath("static/index.html").read_text(), "the wheel lacks the page"
command = shutil.which("bnn-abstain")
assert command and "site-packages" not in command, f"bnn-abstain is not on PATH: {command}"
from PIL import Image  # noqa: E402

from bnn import save_checkpoint  # noqa: E402

save_checkpoint("model.pt", model)
Image.new("L", (60, 40), 255).save("blank.png")
out = subprocess.run(
    [command, "predict", "blank.png", "--checkpoint", "model.pt", "--rule", "median"], capture_output=True, text=True
)
assert out.returncode == 0 and "no ink" in out.stdout, (out.stdout, out.stderr)
print(f"bnn-abstain OK: {out.stdout.strip()}")
