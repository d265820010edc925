"""Checkpoints: tensors and plain data only, validated on load, written atomically.

A checkpoint is a dict saved with :func:`torch.save` and read back with
``torch.load(weights_only=True)``, so that a file can never run code::

    {"format": "bnn-checkpoint", "format_version": 2,
     "config": {...BNNConfig...}, "guide": {...state_dict...},
     "calibration": {...held-out scores and the VAE... (optional, new in version 2)},
     "training": {...optimiser state, epoch, step, RNG state... (optional)}}

Version 1 files (no calibration) still load.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from bnn.calibration import Calibration, CalibrationError
from bnn.config import BNNConfig
from bnn.trained import TrainedBNN

FORMAT = "bnn-checkpoint"
FORMAT_VERSION = 2
#: Versions this package reads.
READABLE_VERSIONS = (1, 2)
#: Where training writes the model and where everything else looks for it.
DEFAULT_CHECKPOINT = Path("checkpoints") / "bnn.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, foreign, from another version or architecture."""


def save_checkpoint(path: str | os.PathLike[str], trained: TrainedBNN, training: dict[str, Any] | None = None) -> Path:
    """Write ``trained`` (and optional training state) to ``path`` atomically.

    The file is written next to its destination and renamed over it, so an
    interrupted save leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": trained.config.to_dict(),
        "guide": {k: v.detach().cpu() for k, v in trained.guide.state_dict().items()},
    }
    if trained.calibration is not None:
        payload["calibration"] = trained.calibration.to_state()
    if training is not None:
        payload["training"] = training
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[TrainedBNN, dict[str, Any] | None]:
    """Read and validate a checkpoint; return the rebuilt model and guide, and the training state if saved.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is truncated or corrupt, carries code or foreign objects, has
        another format version, or its tensors do not fit its configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train a model and save it there first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} was refused: it holds objects other than tensors and plain data, "
            f"which a checkpoint never needs (nothing in it was run).{_blocked_import(err)}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): {err}") from None
    return _validate(path, payload, device)


def _blocked_import(err: pickle.UnpicklingError) -> str:
    """The line of torch's refusal that names what the file asked to import, as " Details: ...", or "". Its first
    line is no detail: it advises loading the file with the check turned off."""
    lines = [line.strip() for line in str(err).splitlines() if "global" in line.lower()]
    return f" Details: {lines[0]}" if lines else ""


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> TrainedBNN:
    """The trained model and guide stored at ``path``, ready for :func:`inference.predict_with_abstain`."""
    return load_checkpoint(path, device)[0]


def _validate(path: Path, payload: Any, device: str | torch.device) -> tuple[TrainedBNN, dict[str, Any] | None]:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (no 'format': '{FORMAT}' entry)")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        hint = "upgrade this package to read it" if newer else "re-train or convert it"
        raise CheckpointError(f"{path} has format version {version!r}; this package reads versions {READABLE_VERSIONS} ({hint})")
    try:
        config = BNNConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has an invalid configuration: {err}") from None
    trained = TrainedBNN.untrained(config)
    state = payload.get("guide")
    expected = trained.guide.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} holds guide parameters {got}, expected {sorted(expected)}")
    for name, ref in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != ref.shape or value.dtype != ref.dtype:
            desc = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(
                f"{path}: parameter {name} is {desc}, but the architecture in its configuration "
                f"({config.input_dim}-{config.hidden_dim}-{config.num_classes}) needs {tuple(ref.shape)} {ref.dtype}"
            )
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: parameter {name} has NaN or infinite values")
    trained.guide.load_state_dict(state)
    if payload.get("calibration") is not None:
        try:
            trained.calibration = Calibration.from_state(payload["calibration"])
        except CalibrationError as err:
            raise CheckpointError(f"{path}: {err}") from None
    training = payload.get("training")
    if training is not None and not isinstance(training, dict):
        raise CheckpointError(f"{path}: 'training' must be a dict, got {type(training).__name__}")
    return trained.to(device), training
