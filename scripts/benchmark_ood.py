"""OOD benchmark: every detector (Bayesian MLP, max-softmax, temperature scaling, VAE, GMM, Mahalanobis) on every set.

Prints the AUROC table, writes JSON, a markdown page and ROC / risk-coverage PNGs.

Example::

    python scripts/benchmark_ood.py --data-dir ../shared/data     # the published run (see docs/ood_benchmark.md)
    python scripts/benchmark_ood.py --train-limit 3000 --limit 300 --classifier-epochs 1 --vae-epochs 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn import BNNConfig, TrainedBNN, load_model  # noqa: E402
from inference import TrainConfig, train  # noqa: E402
from inference import ood_benchmark as ood  # noqa: E402
from inference.data import DatasetNotFoundError, load_mnist  # noqa: E402
from scripts import _cli  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument(
        "--checkpoint", default="checkpoints/bnn.pt", help="trained Bayesian MLP (trained with the defaults if missing)"
    )
    d = ood.BenchmarkConfig()
    p.add_argument("--classifier-epochs", type=_cli.positive_int, default=d.classifier_epochs, help="epochs of the MLP and CNN")
    p.add_argument("--vae-epochs", type=_cli.positive_int, default=d.vae_epochs, help="epochs of each VAE")
    p.add_argument("--gmm-components", type=_cli.positive_int, default=d.gmm_components, help="components of the feature GMM")
    p.add_argument("--train-limit", type=_cli.positive_int, default=None, help="use the first N training images (quick runs)")
    p.add_argument("--limit", type=_cli.positive_int, default=None, help="cap every evaluation set (quick runs)")
    p.add_argument("--noise-size", type=_cli.positive_int, default=d.noise_size, help="images per noise set")
    p.add_argument(
        "--adversarial-images", type=_cli.positive_int, default=d.adversarial_images, help="MNIST test images attacked"
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--json", default="docs/ood_benchmark.json", help="JSON output")
    p.add_argument("--page", default="docs/ood_benchmark.md", help="markdown page; its PNGs go next to it")
    return p


def bayesian_model(args: argparse.Namespace) -> TrainedBNN:
    if Path(args.checkpoint).is_file():
        return load_model(args.checkpoint)
    print(f"{args.checkpoint} not found: training the Bayesian MLP with the default configuration first")
    data = load_mnist(True, args.data_dir).head(args.train_limit)
    trained = TrainedBNN.create(BNNConfig(num_data=len(data)), seed=args.seed)
    config = TrainConfig(seed=args.seed) if args.train_limit is None else TrainConfig(epochs=3, batch_size=128, seed=args.seed)
    train(trained, data, config, checkpoint=args.checkpoint, progress=args.progress)
    return trained


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = ood.BenchmarkConfig(
        classifier_epochs=args.classifier_epochs,
        vae_epochs=args.vae_epochs,
        gmm_components=args.gmm_components,
        train_limit=args.train_limit,
        limit=args.limit,
        noise_size=args.noise_size,
        adversarial_images=args.adversarial_images,
        seed=args.seed,
    )
    try:
        results = ood.run(bayesian_model(args), args.data_dir, config, progress=args.progress)
    except (DatasetNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sets = list(next(iter(results["table"].values())))
    width = max(len(name) for name in results["table"])
    print(f"{'AUROC':<{width}}  " + "  ".join(f"{s:>14}" for s in sets))
    for name, row in results["table"].items():
        print(f"{name:<{width}}  " + "  ".join(f"{row[s]['auroc']:>14.3f}" for s in sets))
    page = Path(args.page)
    page.parent.mkdir(parents=True, exist_ok=True)
    captions = {
        "ood_roc.png": "ROC curves of every detector, MNIST test against each out-of-distribution set",
        "ood_risk_coverage.png": "Accuracy on the answered MNIST test images against coverage, by each classifier's confidence",
    }
    for file, fig in ood.figures(results).items():
        fig.savefig(page.parent / file, dpi=110)
    page.write_text(ood.markdown(results, captions))
    Path(args.json).write_text(json.dumps(ood.json_ready(results), indent=2) + "\n")
    print(f"wrote {args.json}, {args.page} and its figures ({results['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
