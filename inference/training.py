"""Stochastic variational inference for the Bayesian MLP.

The loss is the mean-field ELBO (analytic KL between the guide and the prior, Monte
Carlo expected log-likelihood; :class:`inference.elbo.MeanFieldELBO`, Pyro's
``TraceMeanField_ELBO`` with fewer passes over the weights), minimised with
``torch.optim.Adam`` over the guide's parameters on shuffled minibatches.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from bnn import LocalReparameterization, TrainedBNN, save_checkpoint
from bnn.config import check_fields, option
from inference.augment import random_shift
from inference.contrast import contrast_inputs
from inference.data import ImageSet
from inference.elbo import MeanFieldELBO
from inference.rng import forked_rng


class TrainingDivergedError(RuntimeError):
    """The ELBO became NaN or infinite; the last good checkpoint was kept."""


class DistributedTrainingError(RuntimeError):
    """A process of a multi-process run died or stopped answering; the checkpoint holds the last finished epoch."""


def diverged(
    what: str, epoch: int, step: int, config: TrainConfig, *, rank: int | None = None, checkpoint: Any = None
) -> TrainingDivergedError:
    """The error for a non-finite loss at 0-based ``epoch`` and ``step``, saying what to change."""
    return TrainingDivergedError(
        f"{what} at epoch {epoch + 1}, step {step + 1}"
        + (f" on rank {rank}" if rank is not None else "")
        + f"; lower the learning rate (lr={config.lr}, scale_lr={config.scale_lr})."
        + (f" The last good checkpoint is {checkpoint}." if checkpoint else "")
    )


def cosine_factor(step: int, total_steps: int) -> float:
    """The cosine schedule's multiplier of both learning rates at ``step``: from 1 down towards 0."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def training_state(
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    history: list[dict[str, Any]],
    device: torch.device,
    extra_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A checkpoint's training state, the one format that :func:`train` and the Lightning path write and resume."""
    out = {
        **(extra_state or {}),
        "train_config": config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "rng_state": torch.get_rng_state(),
        "history": history,
    }
    if device.type == "cuda":
        out["cuda_rng_state"] = torch.cuda.get_rng_state(device)
    return out


@dataclass(frozen=True)
class TrainConfig:
    """How to fit the guide. Every field is a flag of the training command.

    Parameters
    ----------
    epochs
        Passes over the training set.
    batch_size
        Minibatch size.
    lr
        Adam's learning rate for the means.
    scale_lr
        Adam's learning rate for the (softplus-parameterised) standard deviations,
        which must travel from ``init_scale`` to their final size within the run.
    kl_weight
        Weight of the KL term: the loss is ``kl_weight * KL(q || p) - E_q[log p(y | x, w)]``.
        1 is the true ELBO; below 1 tempers the posterior (as if every example were
        seen ``1 / kl_weight`` times). Weights the data never inform still relax to
        the prior either way, which is what makes the network doubt unfamiliar inputs.
    local_reparam
        Sample pre-activations instead of weights during training (lower variance, same ELBO).
    shift
        Move each training digit by a random offset of up to this many pixels in x and y
        (:func:`inference.augment.random_shift`), a prior that a digit's class does not depend on where it sits.
    cosine_lr
        Multiply both learning rates by ``(1 + cos(pi * step / total_steps)) / 2`` (computed from the
        step, so a resumed run follows the same schedule).
    contrast_weight
        Weight of the noise-contrastive prior: a quarter of every minibatch's digits are also corrupted
        beyond recognition (:mod:`inference.contrast`) and the sampled network is asked to predict the
        uniform distribution on them, with this weight per input (0: off).
    seed
        Seeds the initialisation, the shuffling and every Monte Carlo draw.
    checkpoint_every
        Also write the checkpoint every this many steps (0: only at epoch ends).
    """

    epochs: int = option(30, "positive_int", "passes over the training set")
    batch_size: int = option(1024, "positive_int", "minibatch size")
    lr: float = option(2e-3, "positive", "Adam learning rate of the means")
    scale_lr: float = option(2e-2, "positive", "Adam learning rate of the standard deviations")
    kl_weight: float = option(0.1, "positive", "weight of the KL term; 1 is the plain ELBO")
    local_reparam: bool = option(True, "bool", "use the local reparameterisation (sample pre-activations, not weights)")
    contrast_weight: float = option(
        0.3, "nonnegative", "weight of the noise-contrastive prior: uncertainty demanded on corrupted digits (0: off)"
    )
    cosine_lr: bool = option(False, "bool", "decay both learning rates to 0 along a cosine over the run")
    shift: int = option(0, "nonnegative_int", "move each training digit by up to this many pixels (0: off)")
    seed: int = option(0, "int", "random seed")
    checkpoint_every: int = option(200, "nonnegative_int", "also checkpoint every N steps, 0 for epoch ends only")

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def make_optimizer(trained: TrainedBNN, config: TrainConfig) -> torch.optim.Adam:
    """Adam with one learning rate for the means and one for the scales."""
    named = list(trained.guide.named_parameters())
    locs = [p for n, p in named if not n.endswith("_rho")]
    rhos = [p for n, p in named if n.endswith("_rho")]
    groups = [{"params": locs, "lr": config.lr}, {"params": rhos, "lr": config.scale_lr}]
    # The fused kernel updates all parameters in one pass (CPU and CUDA alike).
    return torch.optim.Adam(groups, fused=True)


def _shuffle(num: int, seed: int, epoch: int) -> torch.Tensor:
    # One generator per epoch, so that a resumed run sees the same order.
    return torch.randperm(num, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def minibatch_loss(
    trained: TrainedBNN, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, elbo: MeanFieldELBO | None = None
) -> torch.Tensor:
    """The loss SVI minimises on one minibatch: the negative ELBO in nats, scaled to the whole training set.

    ``x``: ``(B, 784)``; ``y``: ``(B,)``. The KL is weighted by ``config.kl_weight``; the digits are shifted
    by up to ``config.shift`` pixels; with ``config.contrast_weight`` a quarter of them, corrupted, carry
    the noise-contrastive factor. Used by :func:`train` and by the Lightning module alike.
    """
    model, guide = trained.model, trained.guide
    elbo = elbo or MeanFieldELBO()
    # The ELBO scales each analytic KL by the guide site's scale.
    scaled_guide = poutine.scale(guide, scale=config.kl_weight) if config.kl_weight != 1.0 else guide
    reparam = LocalReparameterization() if config.local_reparam else contextlib.nullcontext()
    x = random_shift(x, config.shift)
    # Validation off: NaN logits then give a NaN loss, which the callers report.
    with reparam, pyro.validation_enabled(False):
        if not config.contrast_weight:
            return elbo.differentiable_loss(model, scaled_guide, x, y)
        # A quarter of the batch is enough: the plate scales the factor to the data size either way.
        contrast = contrast_inputs(x[: max(1, x.shape[0] // 4)])
        return elbo.differentiable_loss(model, scaled_guide, x, y, contrast, config.contrast_weight)


def finite_at_parameters(
    trained: TrainedBNN, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, elbo: MeanFieldELBO | None = None
) -> bool:
    """Whether the guide's parameters, and the loss at them on the first minibatch, are finite (checked before a save).

    The check draws its own noise, so a resumed run sees the same random stream as a straight one.
    """
    if not all(torch.isfinite(p).all() for p in trained.guide.parameters()):
        return False
    first = torch.arange(min(config.batch_size, images.shape[0]), device=images.device)
    with torch.no_grad(), forked_rng(images.device):
        return bool(torch.isfinite(minibatch_loss(trained, images[first], labels[first], config, elbo)))


@torch.no_grad()
def mean_network_accuracy(trained: TrainedBNN, data: ImageSet, batch_size: int = 4096) -> float:
    """Accuracy of the network whose weights are the posterior means (a cheap progress figure)."""
    params = {k: v.loc.unsqueeze(0) for k, v in trained.guide.posterior().items()}
    correct = 0
    for start in range(0, len(data), batch_size):
        x = data.images[start : start + batch_size].to(trained.device)
        logits = trained.model.sampled_logits(x, params)[0]
        correct += (logits.argmax(-1).cpu() == data.labels[start : start + batch_size]).sum().item()
    return correct / max(1, len(data))


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
    model, device = trained.model, trained.device
    num_data = len(train_set)
    if num_data != model.config.num_data:
        raise ValueError(
            f"the model's likelihood plate is sized for {model.config.num_data} examples, but the training set has {num_data}"
        )
    optimizer = make_optimizer(trained, config)
    history: list[dict[str, Any]] = []
    epoch, step_in_epoch, global_step = 0, 0, 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        epoch, step_in_epoch, global_step = (int(resume_state[k]) for k in ("epoch", "step_in_epoch", "global_step"))
        history = list(resume_state.get("history", []))
        torch.set_rng_state(resume_state["rng_state"])
        if device.type == "cuda" and "cuda_rng_state" in resume_state:
            torch.cuda.set_rng_state(resume_state["cuda_rng_state"], device)
    else:
        pyro.set_rng_seed(config.seed)

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
        )

    def stopped(what: str) -> TrainingDivergedError:
        return diverged(what, epoch, step_in_epoch, config, checkpoint=checkpoint)

    elbo = MeanFieldELBO()
    steps_per_epoch = math.ceil(num_data / config.batch_size)
    base_lrs = [config.lr, config.scale_lr]  # make_optimizer's groups; not read back, since a resumed state holds decayed rates
    images, labels = train_set.images.to(device), train_set.labels.to(device)

    def loss_at(idx: torch.Tensor) -> torch.Tensor:
        return minibatch_loss(trained, images[idx], labels[idx], config, elbo)

    def save() -> None:
        """Write the checkpoint, only if the loss at the parameters being saved is finite."""
        if checkpoint is None:
            return
        if not finite_at_parameters(trained, images, labels, config, elbo):
            raise stopped("the loss at the parameters to be saved is not finite")
        save_checkpoint(checkpoint, trained, state())
        if on_checkpoint is not None:
            on_checkpoint(global_step)

    while epoch < config.epochs:
        order = _shuffle(num_data, config.seed, epoch).to(device)
        started, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            total=steps_per_epoch,
            initial=step_in_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        while step_in_epoch < steps_per_epoch:
            idx = order[step_in_epoch * config.batch_size : (step_in_epoch + 1) * config.batch_size]
            if config.cosine_lr:
                factor = cosine_factor(global_step, config.epochs * steps_per_epoch)
                for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base * factor
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
