"""The evaluation as the scripts run it: its flags, and evaluate-then-publish for a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bnn import TrainedBNN
from inference.cli import add_config_flags, config_from_args
from inference.evaluation import report
from inference.evaluation.abstention import Evaluation, evaluate
from inference.predictive import Rule


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
    group.add_argument("--results", default="docs/results.json", help="JSON output (default: docs/results.json)")
    group.add_argument("--page", default="docs/results.md", help="markdown results page (default: docs/results.md; '' to skip)")
    group.add_argument("--readme", default="README.md", help="README whose results table to update ('' to skip)")


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
        figures_dir=Path(args.page).parent if args.page else None,
    )
    evaluation.training = training_summary(state)
    report.print_evaluation(evaluation)
    report.publish_evaluation(evaluation, args.results, args.page or None, args.readme or None)
    print(f"wrote {args.results}" + (f" and {args.page}" if args.page else ""))
    return evaluation
