"""Run inside a fresh virtual environment with the wheel installed: import every module and predict.

Run from outside the repository, so that the imports come from the installed wheel, not the source tree.
"""

import importlib
import pkgutil
import sys

import torch

import bnn
import inference

modules = []
for package in (bnn, inference):
    assert "site-packages" in package.__file__, f"{package.__name__} imported from {package.__file__}, not the wheel"
    modules.append(package.__name__)
    modules += [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
for name in modules:
    importlib.import_module(name)
required = {"inference.ood.detectors.bayesian", "inference.evaluation.report", "inference.calibration", "bnn.vae"}
missing = required - set(modules)
assert not missing, f"the wheel lacks {sorted(missing)}"

from bnn import BNNConfig, TrainedBNN  # noqa: E402
from inference import predict_with_abstain  # noqa: E402

model = TrainedBNN.untrained(BNNConfig(hidden_dim=32, num_data=100), seed=0)
result = predict_with_abstain(model, torch.rand(4, 28, 28), num_samples=10, rule="median")
assert len(result) == 4 and torch.isfinite(result.mean_probs).all()
print(f"wheel OK: imported {len(modules)} modules and predicted on {len(result)} images (python {sys.version.split()[0]})")
