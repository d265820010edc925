"""The posterior study: train configurations and measure each under the median rule alone.

Selection uses the held-out split of the *training* digits only: its forced accuracy, its
abstention, and how much of a corrupted copy of it (:mod:`inference.training.contrast`) the median rule
refuses. The test sets (MNIST test, notMNIST, FashionMNIST, noise) are measured for the report
and never consulted by :func:`select`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bnn import BNNConfig, TrainedBNN
from inference.data import load_mnist, split_calibration
from inference.evaluation.sets import load_ood_sets
from inference.predictive import predict_with_abstain
from inference.training import TrainConfig, train
from inference.training.contrast import contrast_inputs

#: The training defaults of when the study ran that have changed since (the near-digit study's ``scale_lr``, the
#: variance's bf16 product), under every configuration, so that a re-run trains what the published rows trained.
AS_BEGUN: dict[str, Any] = {"scale_lr": 0.02, "bf16_variance": False}

#: The configurations tried, by name: overrides of :class:`TrainConfig` and :class:`BNNConfig` (NCP: the
#: noise-contrastive prior's ``contrast_weight``), over :data:`AS_BEGUN`.
TRIED: dict[str, dict[str, Any]] = {
    "baseline": {"contrast_weight": 0.0},  # the defaults before this study
    "cosine lr": {"cosine_lr": True, "contrast_weight": 0.0},
    "NCP 0.1": {"contrast_weight": 0.1},
    "NCP 0.3": {"contrast_weight": 0.3},
    "NCP 1": {"contrast_weight": 1.0},
    "cosine lr, NCP 0.3": {"cosine_lr": True, "contrast_weight": 0.3},
    "NCP 0.3, KL weight 0.03": {"contrast_weight": 0.3, "kl_weight": 0.03},
    "NCP 0.3, prior 1.5": {"contrast_weight": 0.3, "prior_scale": 1.5},
    "NCP 0.1, shifts of 2 pixels": {"contrast_weight": 0.1, "shift": 2},
    "NCP 0.3, shifts of 2 pixels": {"contrast_weight": 0.3, "shift": 2},
}
CONFIGURATIONS: dict[str, dict[str, Any]] = {name: AS_BEGUN | overrides for name, overrides in TRIED.items()}
#: What :func:`select` requires on the held-out split.
MAX_VALIDATION_ABSTENTION = 0.03


@dataclass
class Trial:
    """One configuration trained with one seed: held-out figures (for selection) and test figures (for the report)."""

    name: str
    seed: int
    overrides: dict[str, Any]
    train_seconds: float
    validation: dict[str, float]
    test: dict[str, float] = field(default_factory=dict)


def _refused(trained: TrainedBNN, images: torch.Tensor) -> float:
    return predict_with_abstain(trained, images, mode="median").abstained.float().mean().item()


def run_trial(
    name: str, overrides: dict[str, Any], data_dir: str | os.PathLike[str] | None, seed: int = 0, held_out: int = 5000
) -> Trial:
    """Train ``overrides`` on the training split and measure it under the median rule."""
    model_fields = {k: v for k, v in overrides.items() if k in BNNConfig.__dataclass_fields__}
    train_fields = {k: v for k, v in overrides.items() if k not in model_fields}
    fit_set, validation = split_calibration(load_mnist(True, data_dir), held_out, seed)
    trained = TrainedBNN.untrained(BNNConfig(num_data=len(fit_set), **model_fields), seed=seed)
    started = time.perf_counter()
    train(trained, fit_set, TrainConfig(seed=seed, **train_fields), progress=False)
    seconds = time.perf_counter() - started
    val = predict_with_abstain(trained, validation.images, mode="median")
    torch.manual_seed(seed)
    corrupted, _ = contrast_inputs(validation.images)
    trial = Trial(
        name=name,
        seed=seed,
        overrides=overrides,
        train_seconds=seconds,
        validation={
            "forced_accuracy": (val.forced_prediction == validation.labels).float().mean().item(),
            "abstention": val.abstained.float().mean().item(),
            "corrupted_refused": _refused(trained, corrupted),
        },
    )
    test = load_mnist(False, data_dir)
    digits = predict_with_abstain(trained, test.images, mode="median")
    trial.test = {
        "forced_accuracy": (digits.forced_prediction == test.labels).float().mean().item(),
        "abstention": digits.abstained.float().mean().item(),
    }
    sets, _ = load_ood_sets(data_dir, require=True)
    for set_name in ("notMNIST", "FashionMNIST", "uniform noise", "Gaussian noise", "photos"):
        trial.test[f"{set_name} refused"] = _refused(trained, sets[set_name].images)
    return trial


def select(trials: list[Trial]) -> str:
    """The configuration to keep, judged on the held-out split alone, over the seeds every configuration ran.

    Among configurations that abstain on at most 3% of held-out digits and lose at most 0.2 points
    of held-out accuracy against the baseline, the one that refuses the most corrupted held-out digits.
    """
    names = list(dict.fromkeys(t.name for t in trials))
    seeds = set.intersection(*({t.seed for t in trials if t.name == n} for n in names))

    def mean(name: str, key: str) -> float:
        values = [t.validation[key] for t in trials if t.name == name and t.seed in seeds]
        return sum(values) / len(values)

    floor = mean("baseline", "forced_accuracy") - 0.002 if "baseline" in names else 0.0
    eligible = [n for n in names if mean(n, "abstention") <= MAX_VALIDATION_ABSTENTION and mean(n, "forced_accuracy") >= floor]
    return max(eligible or names, key=lambda n: mean(n, "corrupted_refused"))


def as_dict(trials: list[Trial]) -> list[dict[str, Any]]:
    return [asdict(t) for t in trials]


def from_dict(rows: list[dict[str, Any]]) -> list[Trial]:
    return [Trial(**row) for row in rows]
