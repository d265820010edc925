"""The ``bnn-abstain`` command: ``train``, ``evaluate``, ``calibrate``, ``predict`` and ``serve``.

Each subcommand is a module here with ``main(argv, prog)``; they are imported only when run,
so ``bnn-abstain --help`` and ``predict`` stay quick.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train on MNIST, calibrate the abstention rule and evaluate (the main job)",
    "evaluate": "evaluate a checkpoint on MNIST, notMNIST, noise, FashionMNIST and photos",
    "calibrate": "re-calibrate a checkpoint's abstention rule on its held-out digits",
    "predict": "read image files (PNG, JPEG, HEIC; folders and globs) and answer each, or say I don't know",
    "serve": "a page where you draw a digit and watch 100 networks vote",
}


def usage() -> str:
    lines = ["usage: bnn-abstain COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {what}" for name, what in COMMANDS.items()]
    lines += ["", "`bnn-abstain COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``bnn-abstain COMMAND ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"bnn-abstain: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"inference.commands.{name}")
    return module.main(rest, prog=f"bnn-abstain {name}")
