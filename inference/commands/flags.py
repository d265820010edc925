"""Command-line flags made from the config dataclasses, so that an option is written once (in its dataclass).

Each field declared with :func:`bnn.config.option` becomes ``--field-name`` with the field's
help text, default and check; a boolean field that defaults to True becomes ``--no-field-name``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, fields
from typing import Any, TypeVar

import torch

from bnn.config import CHECKS
from inference.data import DATA_DIR_ENV

Config = TypeVar("Config")


def _flag_type(check: str, optional: bool) -> Any:
    convert = int if check.endswith("int") else float
    what, admits = CHECKS[check]

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None
        if not admits(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = convert.__name__
    return parse


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, skip: Iterable[str] = ()) -> None:
    """Add one flag per checked field of ``config_class`` (a dataclass), with its help text and default."""
    group = parser.add_argument_group(config_class.__name__)
    for f in fields(config_class):
        if f.name in set(skip) or "check" not in f.metadata:
            continue
        default = f.default if f.default is not MISSING else None
        flag, help_text = "--" + f.name.replace("_", "-"), f.metadata["help"]
        if f.metadata["check"] == "bool":
            if default:
                group.add_argument(
                    f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false", help=f"do not {help_text}"
                )
            else:
                group.add_argument(flag, dest=f.name, action="store_true", help=help_text)
            continue
        group.add_argument(
            flag,
            dest=f.name,
            type=_flag_type(f.metadata["check"], f.metadata.get("optional", False)),
            default=default,
            help=f"{help_text} (default: {default})",
        )


def config_from_args(config_class: type[Config], args: argparse.Namespace, **overrides: Any) -> Config:
    """An instance of ``config_class`` from the parsed flags that match its fields, plus ``overrides``."""
    values = {f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)}
    return config_class(**(values | overrides))


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The destinations of the flags actually given in ``argv`` (not left at their defaults)."""
    unset = object()
    # argparse fills in a default only where the namespace has no value yet.
    defaults = {action.dest: unset for action in parser._actions if action.dest != "help"}
    namespace = argparse.Namespace(**defaults)
    parsed = parser.parse_known_args(argv, namespace)[0]
    return {name for name, value in vars(parsed).items() if value is not unset}


def device(text: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available)."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA was asked for but torch.cuda.is_available() is False")
    return dev


def add_common_flags(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """``--data-dir``, ``--device``, ``--checkpoint`` and ``--no-progress``."""
    from bnn import DEFAULT_CHECKPOINT

    parser.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    parser.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument(
        "--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"{checkpoint_help} (default: {DEFAULT_CHECKPOINT})"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
