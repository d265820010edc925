"""The configuration that fully determines a Bayesian MLP and its guide."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class BNNConfig:
    """Architecture, prior and guide initialisation of a Bayesian MLP.

    Parameters
    ----------
    input_dim, hidden_dim, num_classes
        Layer widths: ``input_dim -> hidden_dim (ReLU) -> num_classes``.
    prior_scale
        Standard deviation of the zero-mean Normal prior on every weight and bias.
    init_scale
        Initial standard deviation of every factor of the mean-field guide.
    num_data
        Size of the training set; the likelihood plate is scaled to it so that a
        minibatch ELBO is an unbiased estimate of the full-data ELBO.
    """

    input_dim: int = 784
    hidden_dim: int = 1024
    num_classes: int = 10
    prior_scale: float = 1.0
    init_scale: float = 1e-3
    num_data: int = 60_000

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden_dim", "num_classes", "num_data"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BNNConfig.{name} must be a positive integer, got {value!r}")
        for name in ("prior_scale", "init_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"BNNConfig.{name} must be a positive finite number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown BNNConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**data)
