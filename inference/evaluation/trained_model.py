"""The model the measuring code and the notebooks study: the trained checkpoint, or a quick stand-in."""

from __future__ import annotations

import os
from pathlib import Path

from bnn import DEFAULT_CHECKPOINT, BNNConfig, TrainedBNN, load_model, save_checkpoint
from inference.calibration import CalibrationConfig, calibrate, held_out_size
from inference.data import load_mnist, split_calibration
from inference.training import TrainConfig, train

#: The stand-in's training: a few epochs on a slice of MNIST, with a larger scale learning rate
#: so that the posterior widens within the short run.
QUICK = TrainConfig(epochs=8, batch_size=256, lr=1e-3, scale_lr=3e-2)


def load_or_train(
    checkpoint: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    train_limit: int | None = 10_000,
    seed: int = 0,
    save: bool = False,
    progress: bool = False,
) -> TrainedBNN:
    """The model at ``checkpoint`` (default :data:`bnn.DEFAULT_CHECKPOINT`); if there is none, train and calibrate
    one on the first ``train_limit`` images.

    ``train_limit=None`` trains the default configuration on all of MNIST (as ``make train`` does);
    otherwise :data:`QUICK` on the slice, part of which is held out for calibration (:func:`held_out_size`).
    With ``save``, the trained model is written to ``checkpoint``.
    """
    checkpoint = Path(DEFAULT_CHECKPOINT if checkpoint is None else checkpoint)
    if checkpoint.is_file():
        return load_model(checkpoint)
    print(f"{checkpoint} not found: training a {'default' if train_limit is None else 'quick stand-in'} model")
    full = load_mnist(True, data_dir).head(train_limit)
    default = CalibrationConfig().held_out
    fit_set, held_out = split_calibration(full, default if train_limit is None else held_out_size(len(full), default), seed)
    trained = TrainedBNN.untrained(BNNConfig(num_data=len(fit_set)), seed=seed)
    config = TrainConfig(seed=seed) if train_limit is None else TrainConfig(**{**QUICK.to_dict(), "seed": seed})
    train(trained, fit_set, config, progress=progress)
    calibrate(
        trained, held_out, fit_set, CalibrationConfig(held_out=len(held_out)), split_seed=seed, seed=seed, progress=progress
    )
    if save:
        save_checkpoint(checkpoint, trained)
    return trained
