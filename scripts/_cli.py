"""Argument types and flags shared by the scripts (validated at the command line)."""

from __future__ import annotations

import argparse

import torch

from inference.data import DATA_DIR_ENV


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def percentile_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 100], got {text}")
    return value


def device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA was asked for but torch.cuda.is_available() is False")
    return dev


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    parser.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")


def add_rule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-samples", type=positive_int, default=100, help="networks sampled per input (default: 100)")
    parser.add_argument(
        "--threshold", type=unit_float, default=0.2, help="candidate threshold on the percentile probability (default: 0.2)"
    )
    parser.add_argument(
        "--percentile", type=percentile_float, default=50.0, help="percentile across networks (default: 50, the median)"
    )
    parser.add_argument(
        "--method",
        choices=("weights", "local"),
        default="local",
        help="sample pre-activations per input, or whole networks shared by all inputs (default: local)",
    )
    parser.add_argument("--noise-size", type=positive_int, default=10_000, help="images per noise set (default: 10000)")
    parser.add_argument("--limit", type=positive_int, default=None, help="cap every evaluation set at this size (quick runs)")
    parser.add_argument("--results", default="docs/results.json", help="JSON output (default: docs/results.json)")
    parser.add_argument("--page", default="docs/results.md", help="markdown results page (default: docs/results.md; '' to skip)")
    parser.add_argument("--readme", default="README.md", help="README whose results table to update ('' to skip)")
