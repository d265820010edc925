"""The evaluation as ``bnn-abstain train`` and ``evaluate`` run it: its flags, and evaluate-then-publish.

The commands print the table; they write pages only where asked (``--results DIR``, ``--readme FILE``),
so an installed command never leaves files in the folder it runs from. The repository's ``make train``
asks for ``docs/`` and ``README.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnn import TrainedBNN
from inference.commands.flags import add_config_flags, config_from_args
from inference.predictive import Rule

if TYPE_CHECKING:
    from inference.evaluation.abstention import Evaluation


def add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    """The decision rule's flags (from :class:`Rule`) and where the evaluation writes."""
    add_config_flags(parser, Rule)
    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "--method",
        choices=("weights", "local"),
        default="local",
        help="sample pre-activations per input, or whole networks shared by all inputs (default: local)",
    )
    group.add_argument("--noise-size", type=int, default=10_000, help="images per noise set (default: 10000)")
    group.add_argument("--limit", type=int, default=None, help="cap every evaluation set at this size (quick runs)")
    group.add_argument("--resplits", type=int, default=200, help="re-splits of the guarantee check (default: 200; 0 skips)")
    group.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="write results.json, the results page and its figures into DIR (default: none)",
    )
    group.add_argument("--page", default="results.md", help="the results page's file name in --results ('' for none)")
    group.add_argument("--readme", default=None, metavar="FILE", help="update the results table in this README (default: none)")


def training_summary(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the results page says about training, from a checkpoint's training state."""
    if state is None:
        return None
    history = state.get("history", [])
    return {
        "epochs": len(history),
        "seconds": sum(h["seconds"] for h in history),
        "config": state.get("train_config", {}),
        "calibration": state.get("calibration_config"),
        "history": history,
    }


def evaluate_and_publish(trained: TrainedBNN, state: dict[str, Any] | None, args: argparse.Namespace) -> Evaluation:
    """Evaluate ``trained`` with the rule of ``args``, print the table, and write the JSON, page and README table."""
    # The measuring code (torchvision, scikit-learn, matplotlib) loads only when an evaluation runs, not for --help.
    from inference.evaluation import report
    from inference.evaluation.abstention import evaluate

    for name in ("noise_size", "limit", "resplits"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "resplits" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    evaluation = evaluate(
        trained,
        args.data_dir,
        rule=config_from_args(Rule, args),
        method=args.method,
        noise_size=args.noise_size,
        limit=args.limit,
        resplits=args.resplits,
        figures_dir=Path(args.results) if args.results and args.page else None,
    )
    evaluation.training = training_summary(state)
    report.print_evaluation(evaluation)
    if args.results:
        folder = Path(args.results)
        page = folder / args.page if args.page else None
        report.publish_evaluation(evaluation, folder / "results.json", page)
        print(f"wrote {folder / 'results.json'}" + (f" and {page}" if page else ""))
    if args.readme:
        report.publish_readme_table(evaluation, args.readme)
        print(f"updated the results table in {args.readme}")
    return evaluation
