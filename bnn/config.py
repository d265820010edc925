"""The configuration that fully determines a Bayesian MLP and its guide, and the field checks every config shares."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bnn.deskew import check_deskewable


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: What each ``check`` in a field's metadata admits (used by :func:`check_fields` and the command-line flags).
CHECKS: dict[str, tuple[str, Any]] = {
    "positive_int": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "nonnegative_int": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "int": ("an integer", _is_int),
    "positive": ("a positive finite number", lambda v: _is_number(v) and 0 < v < math.inf),
    "nonnegative": ("a finite number >= 0", lambda v: _is_number(v) and 0 <= v < math.inf),
    "unit": ("a number in [0, 1]", lambda v: _is_number(v) and 0.0 <= v <= 1.0),
    "open_unit": ("a number strictly between 0 and 1", lambda v: _is_number(v) and 0.0 < v < 1.0),
    "percent": ("a number in [0, 100]", lambda v: _is_number(v) and 0.0 <= v <= 100.0),
    "bool": ("True or False", lambda v: isinstance(v, bool)),
}


def option(default: Any, check: str, help: str, optional: bool = False) -> Any:  # pragma: no mutate block
    """A dataclass field with a check (a key of :data:`CHECKS`) and the help text of its command-line flag."""
    return field(default=default, metadata={"check": check, "help": help, "optional": optional})


def check_fields(config: Any) -> None:
    """Raise ``ValueError`` naming the first field of a dataclass whose value its ``check`` does not admit."""
    for f in fields(config):
        if "check" not in f.metadata:
            continue
        value = getattr(config, f.name)
        if value is None and f.metadata.get("optional"):
            continue
        what, admits = CHECKS[f.metadata["check"]]
        if not admits(value):
            raise ValueError(f"{type(config).__name__}.{f.name} must be {what}, got {value!r}")


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
    row_column_scales
        Give each weight matrix's guide one standard deviation per row and one per column, the weight
        ``(i, j)``'s being their product (the diagonal matrix-variate Normal of Louizos & Welling, 2016;
        :class:`bnn.layers.RowColumnNormal`). The weights stay independent Normals, but a pre-activation's
        variance then costs a matrix-vector product instead of a matrix product. Off: one per weight.
    deskew
        Remove each input's slant before the first layer (:func:`bnn.deskew.deskew`, moment deskewing), in training
        and prediction alike. Off: the pixels as given.
    """

    input_dim: int = option(784, "positive_int", "input pixels")
    hidden_dim: int = option(1024, "positive_int", "hidden units")
    num_classes: int = option(10, "positive_int", "classes")
    prior_scale: float = option(1.0, "positive", "std of the Normal prior on every weight and bias")
    init_scale: float = option(1e-3, "positive", "initial std of every factor of the guide")
    num_data: int = option(60_000, "positive_int", "size of the training set (the likelihood plate's size)")
    row_column_scales: bool = option(False, "bool", "each weight's std as its row's factor times its column's (faster)")
    deskew: bool = option(False, "bool", "remove each input's slant (moment deskewing) before the network reads it")

    def __post_init__(self) -> None:
        check_fields(self)
        check_deskewable(self.input_dim, self.deskew)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown BNNConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**data)
