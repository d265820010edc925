"""What a calibration stores: the held-out digits' scores and the VAE that scores input density.

:mod:`inference.calibration` computes a :class:`Calibration` and turns it into conformal
p-values; this module only holds it and converts it to and from a checkpoint's plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bnn.vae import VAE, VAEConfig


class CalibrationError(ValueError):
    """A stored calibration that does not fit together (wrong shapes, dtypes or non-finite scores)."""


@dataclass
class Calibration:
    """Scores of ``n`` held-out training digits that the network and the VAE never saw.

    Attributes
    ----------
    entropy
        ``(n,)``: each digit's predictive entropy in nats (the posterior's total uncertainty; the gate's score).
    mutual_information
        ``(n,)``: each digit's mutual information between label and weights (its epistemic part; reported).
    density
        ``(n,)``: each digit's VAE ELBO in nats (an estimate of ``log p(x)``).
    percentile_probs
        ``(n, C)``: each class's ``percentile``-th probability across the networks.
    labels
        ``(n,)``: the digits' true classes.
    vae
        The VAE (trained on the training split only) whose ELBO gives ``density``.
    num_samples, percentile, vae_particles
        How the scores were computed; p-values are exact only for predictions made the same way.
    split_size, split_seed
        Which training images were held out (:func:`inference.data.split_calibration`).
    fisher_combination
        How the gate combines its p-values: Fisher's statistic, ranked among the held-out digits' own
        (:func:`inference.calibration.fisher_p_values`; :class:`inference.calibration.CalibrationConfig`'s
        default), or, ``False``, Bonferroni's (as every calibration saved before the option was).
    class_doubt
        ``(n,)`` or None: each digit's ``-log p(answered class | x)`` under the conditional VAE read as a generative
        classifier (:func:`inference.calibration.class_doubt`), the gate's third score; None in a calibration made
        without it (before the option, or with an unconditional density), whose gate has two.
    """

    entropy: Tensor
    mutual_information: Tensor
    density: Tensor
    percentile_probs: Tensor
    labels: Tensor
    vae: VAE
    num_samples: int
    percentile: float
    vae_particles: int
    split_size: int
    split_seed: int
    fisher_combination: bool = False
    class_doubt: Tensor | None = None

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def has_class_doubt(self) -> bool:
        """Whether the gate has the class doubt as its third score (else two: the entropy and the density)."""
        return self.class_doubt is not None

    def to(self, device: str | torch.device) -> Calibration:
        self.vae.to(device)
        return self

    def to_state(self) -> dict[str, Any]:
        """Tensors and plain data only, for a checkpoint read with ``weights_only=True``."""
        return {
            "entropy": self.entropy.cpu(),
            "mutual_information": self.mutual_information.cpu(),
            "density": self.density.cpu(),
            "percentile_probs": self.percentile_probs.cpu(),
            "labels": self.labels.cpu(),
            "vae_config": self.vae.config.to_dict(),
            "vae": {k: v.detach().cpu() for k, v in self.vae.state_dict().items()},
            "num_samples": self.num_samples,
            "percentile": self.percentile,
            "vae_particles": self.vae_particles,
            "split_size": self.split_size,
            "split_seed": self.split_seed,
            "fisher_combination": self.fisher_combination,
            "class_doubt": None if self.class_doubt is None else self.class_doubt.cpu(),
        }

    @classmethod
    def from_state(cls, state: Any) -> Calibration:
        """Rebuild and validate; raises :class:`CalibrationError` naming what does not fit."""
        if not isinstance(state, dict):
            raise CalibrationError(f"a calibration must be a dict, got {type(state).__name__}")
        try:
            vae = VAE(VAEConfig(**state["vae_config"]))
            vae.load_state_dict(state["vae"])
            calibration = cls(
                entropy=state["entropy"],
                mutual_information=state["mutual_information"],
                density=state["density"],
                percentile_probs=state["percentile_probs"],
                labels=state["labels"],
                vae=vae.eval(),
                num_samples=int(state["num_samples"]),
                percentile=float(state["percentile"]),
                vae_particles=int(state["vae_particles"]),
                split_size=int(state["split_size"]),
                split_seed=int(state["split_seed"]),
                # A calibration saved before the option existed was made for Bonferroni's combination.
                fisher_combination=bool(state.get("fisher_combination", False)),
                class_doubt=state.get("class_doubt"),  # absent before the option: a two-score gate
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CalibrationError(f"the calibration is incomplete or does not fit its VAE: {err}") from None
        calibration.validate()
        return calibration

    def validate(self) -> None:
        n = len(self.labels) if isinstance(self.labels, Tensor) else -1
        # name: (dimensions, dtype check, optional: None allowed)
        checks = {
            "entropy": (1, torch.is_floating_point, False),
            "mutual_information": (1, torch.is_floating_point, False),
            "density": (1, torch.is_floating_point, False),
            "percentile_probs": (2, torch.is_floating_point, False),
            "labels": (1, lambda t: t.dtype == torch.int64, False),
            "class_doubt": (1, torch.is_floating_point, True),  # a two-score gate has none
        }
        for name, (dims, dtype_ok, optional) in checks.items():
            value = getattr(self, name)
            if optional and value is None:
                continue
            if not isinstance(value, Tensor) or value.dim() != dims or value.shape[0] != n or not dtype_ok(value):
                desc = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
                raise CalibrationError(f"calibration {name} is {desc}; expected {dims} dimension(s) of length {n}")
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise CalibrationError(f"calibration {name} has NaN or infinite values")
        if n < 1:
            raise CalibrationError("a calibration needs at least one held-out image")
