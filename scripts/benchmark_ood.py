"""OOD benchmark: every detector (the BNN's scores, pytorch-ood's, a GMM and a VAE) on every set.

The detectors: the Bayesian MLP's scores; max-softmax, temperature scaling, energy, ODIN, Mahalanobis,
KNN and ViM on a deterministic MLP (pytorch-ood); a feature GMM; a VAE. Prints the AUROC table, writes
JSON (with refused / answered-wrong at one validation refusal rate), a markdown page and ROC /
risk-coverage PNGs.

Example::

    python scripts/benchmark_ood.py --data-dir /path/to/data     # the published run (see docs/ood_benchmark.md)
    python scripts/benchmark_ood.py --train-limit 3000 --limit 300 --classifier-epochs 1 --vae-epochs 1   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inference.commands.flags import add_common_flags, add_config_flags, config_from_args
from inference.data import DatasetNotFoundError
from inference.evaluation import report
from inference.evaluation.ood import benchmark as ood
from inference.evaluation.trained_model import load_or_train

CAPTIONS = {
    "ood_roc.png": "ROC curves of every detector, MNIST test against each out-of-distribution set",
    "ood_risk_coverage.png": "Accuracy on the answered MNIST test images against coverage, by each classifier's confidence",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(p, "trained Bayesian MLP (trained and saved there first if missing)")
    add_config_flags(p, ood.BenchmarkConfig)
    p.add_argument("--json", default="docs/ood_benchmark.json", help="JSON output")
    p.add_argument("--page", default="docs/ood_benchmark.md", help="markdown page; its PNGs go next to it")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = config_from_args(ood.BenchmarkConfig, args)
    try:
        trained = load_or_train(args.checkpoint, args.data_dir, train_limit=config.train_limit, seed=config.seed, save=True)
        results = ood.run(trained, args.data_dir, config, progress=args.progress)
    except (DatasetNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sets = list(next(iter(results.table.values())))
    width = max(len(name) for name in results.table)
    print(f"{'AUROC':<{width}}  " + "  ".join(f"{s:>14}" for s in sets))
    for name, row in results.table.items():
        print(f"{name:<{width}}  " + "  ".join(f"{row[s]['auroc']:>14.3f}" for s in sets))
    page = Path(args.page)
    page.parent.mkdir(parents=True, exist_ok=True)
    for file, fig in ood.figures(results).items():
        fig.savefig(page.parent / file, dpi=110)
    page.write_text(report.ood_page(results, CAPTIONS))
    report.write_json(results, args.json)
    print(f"wrote {args.json}, {args.page} and its figures ({results.seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
