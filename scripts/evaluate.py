"""Evaluate a trained Bayesian MLP: MNIST, notMNIST, noise and FashionMNIST under the abstention rule.

Example::

    python scripts/evaluate.py --checkpoint checkpoints/bnn.pt --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn import load_checkpoint  # noqa: E402
from inference.evaluation import evaluate, print_table, write_results  # noqa: E402
from scripts import _cli  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/bnn.pt", help="checkpoint to evaluate (default: checkpoints/bnn.pt)")
    _cli.add_common(p)
    _cli.add_rule(p)
    return p


def run(args: argparse.Namespace, training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``args.checkpoint`` and write the JSON, the results page and the README table."""
    trained, state = load_checkpoint(args.checkpoint, args.device)
    results = evaluate(
        trained,
        args.data_dir,
        num_samples=args.num_samples,
        threshold=args.threshold,
        percentile=args.percentile,
        method=args.method,
        noise_size=args.noise_size,
        limit=args.limit,
        figures_dir=Path(args.page).parent if args.page else None,
    )
    if training is None and state is not None:
        history = state.get("history", [])
        training = {
            "epochs": len(history),
            "seconds": sum(h["seconds"] for h in history),
            "config": state.get("train_config", {}),
            "history": history,
        }
    if training is not None:
        results["training"] = training
    print_table(results)
    write_results(results, args.results, args.page or None, args.readme or None)
    print(f"wrote {args.results}" + (f" and {args.page}" if args.page else ""))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
