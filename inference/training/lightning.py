"""Training on Lightning, across processes and machines: the same model, guide and loss as :func:`train`.

The pattern is Pyro's ``examples/svi_lightning.py``: the ELBO is a module, the optimiser a torch
optimiser, and the likelihood's ``pyro.plate`` keeps the full data size while each rank's batch is
its subsample. Lightning wraps the module in DDP (gradients are averaged across ranks) and gives
each rank its shard of every epoch through a ``DistributedSampler``. With ``batch_size`` B and W
ranks, each rank draws B / W digits per step, so a step sees B digits in all, as in :func:`train`.

- Every rank starts from the same parameters (the seed, and DDP's broadcast from rank 0) and draws
  its own Monte Carlo noise (the seed offset by the rank).
- Only rank 0 writes checkpoints, atomically, in the same format as :func:`train`; a checkpoint
  resumes under any world size (and in :func:`train`) at the start of the epoch it stopped in.
- The progress bar and log lines come from rank 0.

Needs the ``distributed`` extra (``pip install 'bnn-abstain[distributed]'``).
"""

from __future__ import annotations

import datetime
import math
import os
import time
from typing import Any

import lightning as L
import pyro
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset

from bnn import TrainedBNN, save_checkpoint
from inference.data import ImageSet
from inference.training import step
from inference.training.config import TrainConfig
from inference.training.contrast import glyph_weights, prepare_contrast
from inference.training.elbo import MeanFieldELBO
from inference.training.step import DistributedTrainingError, TrainingDivergedError
from inference.training.teacher import teacher_labels

#: How long a rank waits for the others in a collective before the run fails (a dead rank must not hang it).
DEFAULT_TIMEOUT = datetime.timedelta(seconds=120)


class SVIModule(L.LightningModule):
    """The guide of ``trained``, fitted by SVI on ``train_set``: one step is one minibatch of the mean-field ELBO."""

    def __init__(
        self,
        trained: TrainedBNN,
        train_set: ImageSet,
        config: TrainConfig,
        checkpoint: str | os.PathLike[str],
        resume_state: dict[str, Any] | None = None,
        extra_state: dict[str, Any] | None = None,
    ):
        super().__init__()
        step.check_num_data(trained, len(train_set))
        self.trained, self.config, self.resume_state = trained, config, resume_state
        # Registered, so that Lightning moves them to the device and DDP averages the guide's gradients.
        self.model, self.guide = trained.model, trained.guide
        self.elbo = MeanFieldELBO()
        self.train_set, self.checkpoint, self.extra_state = train_set, checkpoint, extra_state
        self.history: list[dict[str, Any]] = list((resume_state or {}).get("history", []))
        self.epochs_done = int((resume_state or {}).get("epoch", 0))
        self._epoch_losses: list[float] = []
        self._epoch_started = 0.0
        self._glyph_weights: torch.Tensor | None = None
        # Every rank trains the same teacher (the same seed), so every rank's digits carry the same labels.
        self.soft_labels = teacher_labels(train_set.images, train_set.labels, config, trained.model.config.num_classes)

    def train_dataloader(self) -> DataLoader:
        world = self.trainer.world_size if self._trainer is not None else 1
        if self.config.batch_size % world:
            raise ValueError(f"batch_size {self.config.batch_size} must be a multiple of the {world} processes")
        soft = () if self.soft_labels is None else (self.soft_labels,)
        data = TensorDataset(self.train_set.images, self.train_set.labels, *soft)
        # One generator per run: Lightning swaps in a DistributedSampler (seeded alike on every rank) under DDP.
        generator = torch.Generator().manual_seed(step.shuffle_seed(self.config.seed, self.epochs_done))
        return DataLoader(data, batch_size=self.config.batch_size // world, shuffle=True, generator=generator)

    def configure_optimizers(self) -> Any:
        optimizer = step.make_optimizer(self.trained, self.config)
        if self.resume_state is not None:
            optimizer.load_state_dict(self.resume_state["optimizer"])
        return optimizer

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / self.config.batch_size)

    def on_train_start(self) -> None:
        if self.global_rank == 0:  # one warning per run, not one per process
            step.check_scale_travel(self.trained, self.config, self.steps_per_epoch)
        prepare_contrast(self.config)
        # The same start on every rank; different noise on each.
        pyro.set_rng_seed(step.noise_seed(self.config.seed, self.epochs_done, self.global_rank))

    def on_train_epoch_start(self) -> None:
        self._epoch_losses, self._epoch_started = [], time.perf_counter()
        # Every rank holds the same parameters here, so every rank draws with the same weights.
        self._glyph_weights = glyph_weights(self.trained, self.config)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, *soft = batch
        step.schedule(
            self.trainer.optimizers[0], self.config, self.epochs_done * self.steps_per_epoch + batch_idx, self.steps_per_epoch
        )
        soft_labels = soft[0] if soft else None
        loss = step.minibatch_loss(self.trained, x, y, self.config, self.elbo, self._glyph_weights, soft_labels)
        if not torch.isfinite(loss):
            raise step.diverged(f"the ELBO became {loss.item()}", self.epochs_done, batch_idx, self.config, rank=self.global_rank)
        per_example = loss.detach() / len(self.train_set)
        self._epoch_losses.append(per_example.item())
        self.log("loss", per_example, prog_bar=True, sync_dist=False)
        return loss

    def on_train_epoch_end(self) -> None:
        mean = torch.tensor(sum(self._epoch_losses) / max(1, len(self._epoch_losses)), device=self.device)
        mean = self.trainer.strategy.reduce(mean, reduce_op="mean")  # the epoch's loss over every rank's batches
        self.epochs_done += 1
        self.history.append(
            {"epoch": self.epochs_done, "loss": float(mean), "seconds": time.perf_counter() - self._epoch_started}
        )
        if self.trainer.is_global_zero:
            self.save()

    def save(self) -> None:
        """Write the checkpoint (rank 0, atomically), only if the loss at the parameters being saved is finite."""
        first = slice(0, self.config.batch_size)  # all that the check reads
        images, labels = self.train_set.images[first].to(self.device), self.train_set.labels[first].to(self.device)
        step.check_before_save(
            self.trained, images, labels, self.config, self.elbo, epoch=self.epochs_done - 1, step=0, checkpoint=self.checkpoint
        )
        save_checkpoint(self.checkpoint, self.trained, self.training_state())
        h = self.history[-1]
        print(f"epoch {h['epoch']:3d}: loss {h['loss']:.4f} nats/example, {h['seconds']:.1f} s; saved", flush=True)

    def training_state(self) -> dict[str, Any]:
        """The checkpoint's training state, in :func:`inference.train`'s format (resumable by either)."""
        return step.training_state(
            self.config,
            self.trainer.optimizers[0],
            epoch=self.epochs_done,
            step_in_epoch=0,
            global_step=self.epochs_done * self.steps_per_epoch,
            history=self.history,
            device=self.device,
            extra_state=(self.extra_state or {}) | {"world_size": self.trainer.world_size},
        )


def fit(
    trained: TrainedBNN,
    train_set: ImageSet,
    config: TrainConfig,
    *,
    checkpoint: str | os.PathLike[str],
    devices: int | str = 1,
    num_nodes: int = 1,
    accelerator: str = "cpu",
    strategy: str = "auto",
    resume_state: dict[str, Any] | None = None,
    extra_state: dict[str, Any] | None = None,
    progress: bool = True,
    timeout: datetime.timedelta = DEFAULT_TIMEOUT,
) -> tuple[list[dict[str, Any]], int]:
    """Fit ``trained.guide`` on Lightning; return the per-epoch history and this process's global rank.

    ``devices``, ``num_nodes``, ``accelerator`` and ``strategy`` are Lightning's (``strategy="ddp"`` runs
    one process per device; on CPU the processes talk over gloo). Every rank returns; only rank 0's
    parameters are checkpointed, and after the run every rank holds the same parameters.
    """
    module = SVIModule(trained, train_set, config, checkpoint, resume_state, extra_state)
    if strategy == "ddp":
        backend = "nccl" if accelerator == "gpu" else "gloo"
        strategy_obj: Any = DDPStrategy(process_group_backend=backend, timeout=timeout)
    else:
        strategy_obj = strategy
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy_obj,
        max_epochs=config.epochs - module.epochs_done,
        enable_checkpointing=False,  # the module writes this project's format
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=True,
    )
    if module.epochs_done >= config.epochs:
        return module.history, trainer.global_rank
    try:
        trainer.fit(module)
    except TrainingDivergedError:
        raise
    except RuntimeError as err:  # a rank died (its peers see the connection close) or a collective timed out
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DistributedTrainingError(
            f"a training process failed ({first_line}); {checkpoint} holds the last finished epoch: "
            "run the same command with --resume to continue (with any number of processes)"
        ) from err
    return module.history, trainer.global_rank
