"""The built-in training loop: SVI on shuffled minibatches, with checkpoints and exact resume.

The loss is the mean-field ELBO (analytic KL between the guide and the prior, Monte Carlo expected
log-likelihood; :class:`inference.training.elbo.MeanFieldELBO`, Pyro's ``TraceMeanField_ELBO`` with fewer
passes over the weights), minimised with ``torch.optim.Adam`` over the guide's parameters. Each step is
:mod:`inference.training.step`'s, the same as the Lightning module's.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import pyro
import torch
from tqdm.auto import tqdm

from bnn import TrainedBNN, save_checkpoint
from inference.data import ImageSet
from inference.training.config import TrainConfig
from inference.training.contrast import glyph_weights, prepare_contrast
from inference.training.elbo import MeanFieldELBO
from inference.training.step import (
    TrainingDivergedError,
    check_before_save,
    check_num_data,
    check_scale_travel,
    diverged,
    make_optimizer,
    minibatch_loss,
    noise_seed,
    schedule,
    shuffle_seed,
    training_state,
)
from inference.training.teacher import teacher_labels


def mean_network_accuracy(trained: TrainedBNN, data: ImageSet, batch_size: int = 4096) -> float:
    """Accuracy of the network whose weights are the posterior means (a cheap progress figure)."""
    predicted = trained.mean_logits(data.images, batch_size).argmax(-1).cpu()
    return (predicted == data.labels).sum().item() / max(1, len(data))


def train(
    trained: TrainedBNN,
    train_set: ImageSet,
    config: TrainConfig,
    *,
    test_set: ImageSet | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume_state: dict[str, Any] | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    max_steps: int | None = None,
    extra_state: dict[str, Any] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit ``trained.guide`` by SVI; return one summary dict per finished epoch.

    Parameters
    ----------
    train_set
        Training images and labels; ``len(train_set)`` must equal ``config.num_data`` of the model.
    checkpoint
        Where to write checkpoints (atomically, every ``checkpoint_every`` steps and at every epoch end).
    resume_state
        The ``training`` entry of a checkpoint: continue exactly where it stopped
        (optimiser state, epoch, step and RNG state are restored).
    max_steps
        Stop after this many optimisation steps in total (for tests and benchmarks).
    extra_state
        Plain data saved with every checkpoint's training state (how the training set was made, say).
    on_checkpoint
        Called with the global step after every checkpoint written.

    Raises
    ------
    TrainingDivergedError
        When a step's loss is not finite; the checkpoint on disk is the last one whose
        parameters gave a finite loss.
    """
    device, num_data = trained.device, len(train_set)
    check_num_data(trained, num_data)
    optimizer = make_optimizer(trained, config)
    history: list[dict[str, Any]] = []
    epoch, step_in_epoch, global_step = 0, 0, 0
    weights = None  # the epoch's draw weights of the typeset characters, under mine_glyphs
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        epoch, step_in_epoch, global_step = (int(resume_state[k]) for k in ("epoch", "step_in_epoch", "global_step"))
        history = list(resume_state.get("history", []))
        weights = resume_state.get("glyph_weights")
        torch.set_rng_state(resume_state["rng_state"])
        if device.type == "cuda" and "cuda_rng_state" in resume_state:
            torch.cuda.set_rng_state(resume_state["cuda_rng_state"], device)
    else:
        pyro.set_rng_seed(noise_seed(config.seed))

    def state() -> dict[str, Any]:
        return training_state(
            config,
            optimizer,
            epoch=epoch,
            step_in_epoch=step_in_epoch,
            global_step=global_step,
            history=history,
            device=device,
            extra_state=extra_state,
            glyph_weights=weights,
        )

    def stopped(what: str) -> TrainingDivergedError:
        return diverged(what, epoch, step_in_epoch, config, checkpoint=checkpoint)

    elbo = MeanFieldELBO()
    steps_per_epoch = math.ceil(num_data / config.batch_size)
    check_scale_travel(trained, config, steps_per_epoch)
    prepare_contrast(config)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    soft_labels = teacher_labels(images, labels, config, trained.model.config.num_classes)

    def loss_at(idx: torch.Tensor) -> torch.Tensor:
        soft = None if soft_labels is None else soft_labels[idx]
        return minibatch_loss(trained, images[idx], labels[idx], config, elbo, weights, soft)

    def save() -> None:
        """Write the checkpoint, only if the loss at the parameters being saved is finite."""
        if checkpoint is None:
            return
        check_before_save(trained, images, labels, config, elbo, epoch=epoch, step=step_in_epoch, checkpoint=checkpoint)
        save_checkpoint(checkpoint, trained, state())
        if on_checkpoint is not None:
            on_checkpoint(global_step)

    while epoch < config.epochs:
        order = torch.randperm(num_data, generator=torch.Generator().manual_seed(shuffle_seed(config.seed, epoch))).to(device)
        started, total, seen = time.perf_counter(), 0.0, 0
        if step_in_epoch == 0 or weights is None:  # a run resumed within an epoch keeps that epoch's weights
            weights = glyph_weights(trained, config)
        bar = tqdm(
            total=steps_per_epoch,
            initial=step_in_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        while step_in_epoch < steps_per_epoch:
            idx = order[step_in_epoch * config.batch_size : (step_in_epoch + 1) * config.batch_size]
            schedule(optimizer, config, global_step, steps_per_epoch)
            loss = loss_at(idx)
            if not torch.isfinite(loss):
                bar.close()
                raise stopped(f"the ELBO became {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step_in_epoch += 1
            global_step += 1
            total += loss.item()
            seen += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item() / num_data:.4f}")
            if config.checkpoint_every and global_step % config.checkpoint_every == 0:
                save()
            if max_steps is not None and global_step >= max_steps:
                bar.close()
                save()
                return history
        bar.close()
        summary = {
            "epoch": epoch + 1,
            "loss": total / max(1, seen) / num_data,
            "seconds": time.perf_counter() - started,
        }
        if test_set is not None:
            summary["test_accuracy"] = mean_network_accuracy(trained, test_set)
        history.append(summary)
        epoch, step_in_epoch = epoch + 1, 0
        save()
        if on_epoch is not None:
            on_epoch(summary)
    return history
