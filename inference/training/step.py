"""One SVI step, as both training loops take it: the loss, the schedule, the finite-loss check and the errors.

:func:`inference.training.train` (the built-in loop) and :class:`inference.training.lightning.SVIModule`
call these and nothing else of each other, so the two loops cannot drift apart.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Any

import pyro
import torch
from pyro import poutine

from bnn import LocalReparameterization, TrainedBNN
from bnn.guide import inverse_softplus
from inference.rng import forked_rng
from inference.training.augment import random_distortion, random_shift, random_wider_pen
from inference.training.config import TrainConfig
from inference.training.contrast import confident_neighbours, contrast_batch
from inference.training.elbo import MeanFieldELBO


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


def check_num_data(trained: TrainedBNN, num_data: int) -> None:
    """The likelihood's plate must be sized for the training set, or the ELBO is mis-scaled."""
    if num_data != trained.model.config.num_data:
        raise ValueError(
            f"the model's likelihood plate is sized for {trained.model.config.num_data} examples, "
            f"but the training set has {num_data}"
        )


def shuffle_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s shuffle (one generator per epoch, so that a resumed run sees the same order)."""
    return seed * 1_000_003 + epoch


def noise_seed(seed: int, epoch: int = 0, rank: int = 0) -> int:
    """The Monte Carlo noise's seed of a run started at ``epoch`` on process ``rank``: ``seed`` itself for a fresh
    single-process run; otherwise distinct per epoch and rank (ranks must not draw the same noise)."""
    return seed if epoch == 0 and rank == 0 else seed * 1_000_003 + 7919 * epoch + rank


def cosine_factor(step: int, total_steps: int) -> float:
    """The cosine schedule's multiplier of both learning rates at ``step``: from 1 down towards 0."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, global_step: int, steps_per_epoch: int) -> None:
    """Set both learning rates for ``global_step``: the configured rates, decayed along a cosine with ``cosine_lr``.

    The rates come from ``config``, not from the optimiser, whose state after a resume holds decayed ones.
    """
    if not config.cosine_lr:
        return
    factor = cosine_factor(global_step, config.epochs * steps_per_epoch)
    for group, base in zip(optimizer.param_groups, (config.lr, config.scale_lr), strict=True):
        group["lr"] = base * factor


class ShortRunWarning(UserWarning):
    """The run is too short for the standard deviations to reach the prior's scale (:func:`check_scale_travel`);
    a category of its own, so that a short run made on purpose (a test, a timed epoch) can silence just this."""


def check_scale_travel(trained: TrainedBNN, config: TrainConfig, steps_per_epoch: int) -> None:
    """Warn when the run is too short for the standard deviations to grow from ``init_scale`` to the prior's scale.

    Adam moves each rho by at most about ``scale_lr`` per step, so a weight the data never informs (a border
    pixel's) needs ``softplus^-1(prior_scale) - softplus^-1(init_scale)`` over ``scale_lr`` steps to relax to its
    prior. Short of that, the network keeps a narrow posterior where it should doubt, and refuses less.
    """
    model = trained.model.config
    # With row-column scales each factor travels from the square root of init_scale to that of the prior's scale.
    power = 0.5 if model.row_column_scales else 1.0
    needed = inverse_softplus(model.prior_scale**power) - inverse_softplus(model.init_scale**power)
    steps = config.epochs * steps_per_epoch * (0.5 if config.cosine_lr else 1.0)
    if config.scale_lr * steps < needed:
        warnings.warn(
            f"scale_lr={config.scale_lr} over {config.epochs} epochs of {steps_per_epoch} steps moves the standard "
            f"deviations too little to reach the prior's scale from init_scale={model.init_scale}; weights the data "
            f"do not inform stay narrow and the network doubts less. Use scale_lr >= {needed / steps:.2g}.",
            ShortRunWarning,
            stacklevel=3,
        )


def make_optimizer(trained: TrainedBNN, config: TrainConfig) -> torch.optim.Adam:
    """Adam with one learning rate for the means and one for the scales."""
    named = list(trained.guide.named_parameters())
    locs = [p for n, p in named if not n.endswith("_rho")]
    rhos = [p for n, p in named if n.endswith("_rho")]
    groups = [{"params": locs, "lr": config.lr}, {"params": rhos, "lr": config.scale_lr}]
    # The fused kernel updates all parameters in one pass (CPU and CUDA alike).
    return torch.optim.Adam(groups, fused=True)


@functools.cache  # asked every step; the hardware does not change
def has_bf16_units(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX),
    so that a bf16 product is faster than a float32 one rather than emulated."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        cpu = torch.cpu
        return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def variance_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The dtype of the variance's product in training: bfloat16 with ``config.bf16_variance`` on bf16 hardware."""
    return torch.bfloat16 if config.bf16_variance and has_bf16_units(device) else None


def minibatch_loss(
    trained: TrainedBNN,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    elbo: MeanFieldELBO | None = None,
    glyph_weights: torch.Tensor | None = None,
    soft_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss SVI minimises on one minibatch: the negative ELBO in nats, scaled to the whole training set.

    ``x``: ``(B, 784)``; ``y``: ``(B,)``. The KL is weighted by ``config.kl_weight``; the digits are shifted
    by up to ``config.shift`` pixels, distorted with ``config.distort`` and a share ``config.wide_pen`` of them drawn
    with a wider pen; with ``config.contrast_weight`` a
    quarter of them, made into non-digits, carry the noise-contrastive factor (their targets uniform, or partly their
    digit's class where ``config.glyph_mix`` cut a character into it; the typeset characters drawn with
    ``glyph_weights``, the epoch's :func:`~inference.training.contrast.glyph_weights`). With ``soft_labels``
    ``(B, C)`` (``config.distill``'s, :func:`~inference.training.teacher.distilled_targets`) the digits are scored
    against those distributions, not ``y``. Used by both loops.
    """
    model, guide = trained.model, trained.guide
    elbo = elbo or MeanFieldELBO()
    # The ELBO scales each analytic KL by the guide site's scale.
    scaled_guide = poutine.scale(guide, scale=config.kl_weight) if config.kl_weight != 1.0 else guide
    reparam = LocalReparameterization(variance_dtype(config, x.device)) if config.local_reparam else contextlib.nullcontext()
    x = random_wider_pen(random_distortion(random_shift(x, config.shift), config.distort), config.wide_pen)
    # Validation off: NaN logits then give a NaN loss, which the callers report.
    with reparam, pyro.validation_enabled(False):
        observed = y if soft_labels is None else soft_labels
        if not config.contrast_weight:
            return elbo.differentiable_loss(model, scaled_guide, x, observed)
        contrast, targets = contrast_batch(x, y, config, model.config.num_classes, glyph_weights)
        if config.adversarial_contrast:
            contrast = confident_neighbours(contrast, trained, config.adversarial_contrast, config.adversarial_radius)
        return elbo.differentiable_loss(model, scaled_guide, x, observed, contrast, config.contrast_weight, targets)


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


def check_before_save(
    trained: TrainedBNN,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    elbo: MeanFieldELBO,
    *,
    epoch: int,
    step: int,
    checkpoint: Any,
) -> None:
    """Raise :class:`TrainingDivergedError` rather than save parameters whose loss is not finite (both loops, before a save)."""
    if not finite_at_parameters(trained, images, labels, config, elbo):
        raise diverged("the loss at the parameters to be saved is not finite", epoch, step, config, checkpoint=checkpoint)


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
    glyph_weights: torch.Tensor | None = None,
) -> dict[str, Any]:
    """A checkpoint's training state, the one format that :func:`train` and the Lightning path write and resume
    (with the epoch's ``glyph_weights`` under ``mine_glyphs``, so that a run resumed within an epoch draws as before)."""
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
    if glyph_weights is not None:
        out["glyph_weights"] = glyph_weights
    return out
