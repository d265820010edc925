"""Evaluate a trained Bayesian MLP on MNIST, notMNIST, noise, FashionMNIST and photos under both rules.

Example::

    bnn-abstain evaluate --checkpoint checkpoints/bnn.pt --data-dir /path/to/data
"""

from __future__ import annotations

import argparse
import sys

from bnn import load_checkpoint
from inference.commands.flags import add_common_flags
from inference.commands.results import add_evaluation_flags, evaluate_and_publish


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_common_flags(p, "checkpoint to evaluate")
    add_evaluation_flags(p)
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    try:
        trained, state = load_checkpoint(args.checkpoint, args.device)
        evaluate_and_publish(trained, state, args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
