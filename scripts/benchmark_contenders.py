"""The BNN beside a deep ensemble, MC dropout, outlier exposure and one MLP, on every set, with time to quality.

Every contender trains on the same 55,000 digits, for the same epochs and batch size, in one run of
this script, so their times compare as measured on the same machine at the same moment. Writes
``docs/contenders.json`` and ``docs/contenders.md``. See ``inference/evaluation/contenders.py``.

Example::

    python scripts/benchmark_contenders.py --data-dir /path/to/data
    python scripts/benchmark_contenders.py --epochs 1 --train-limit 2000 --limit 500 --json '' --page ''   # a quick look
    python scripts/benchmark_contenders.py --aggregate docs/contenders.json docs/contenders_seed1.json docs/contenders_seed2.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from bnn import BNNConfig, TrainedBNN
from inference.calibration import CalibrationConfig, calibrate, density_scores
from inference.data import DATA_DIR_ENV, ImageSet, load_mnist, split_calibration
from inference.evaluation import contenders as c
from inference.evaluation import report
from inference.evaluation.metrics import auroc, fpr_at_95_tpr
from inference.evaluation.near_study import rule_figures
from inference.evaluation.sets import DIGIT_SETS, OOD_SETS, load_sets
from inference.posterior import SCORING_SEED, summarise
from inference.predictive import DEFAULT_RULE
from inference.training import TrainConfig, train
from inference.training.contrast import prepare_contrast

NETWORKS = 100  # the BNN's networks per input, and MC dropout's passes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    p.add_argument("--epochs", type=int, default=c.EPOCHS, help=f"epochs for every contender (default: {c.EPOCHS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of every network (default: 0)")
    p.add_argument("--limit", type=int, default=None, help="at most this many images per evaluation set (default: all)")
    p.add_argument("--held-out", type=int, default=5000, help="validation digits held out from training (default: 5000)")
    p.add_argument("--train-limit", type=int, default=None, help="train on this many digits only (a quick look; default: all)")
    p.add_argument("--json", default="docs/contenders.json", help="JSON output ('' to skip)")
    p.add_argument("--page", default="docs/contenders.md", help="markdown page ('' to skip)")
    p.add_argument("--aggregate", nargs="+", metavar="JSON", help="train nothing: put these runs' JSON on one page")
    p.add_argument("--seeds-page", default="docs/contenders_seeds.md", help="the page --aggregate writes")
    args = p.parse_args(argv)
    if args.aggregate:
        runs = [json.loads(Path(path).read_text()) for path in args.aggregate]
        text = report.contenders_seeds_page(runs)
        print(text)
        Path(args.seeds_page).parent.mkdir(parents=True, exist_ok=True)
        Path(args.seeds_page).write_text(text)
        return 0
    torch.manual_seed(args.seed)
    fit_set, validation = split_calibration(load_mnist(True, args.data_dir), args.held_out, args.seed)
    if args.train_limit:
        fit_set = ImageSet(fit_set.name, fit_set.images[: args.train_limit], fit_set.labels[: args.train_limit])
    test = load_mnist(False, args.data_dir)
    sets, missing = load_sets(OOD_SETS | DIGIT_SETS, args.data_dir, limit=args.limit, require=True)
    for set_name, data in sets.items():  # an OOD set's own labels (KMNIST's, notMNIST's letters) are no digits
        if set_name not in DIGIT_SETS:
            sets[set_name] = ImageSet(data.name, data.images, torch.full_like(data.labels, -1))
    if args.limit:
        test = ImageSet(test.name, test.images[: args.limit], test.labels[: args.limit])
    results: dict[str, Any] = {
        "epochs": args.epochs,
        "seed": args.seed,
        "refusal_rate": c.REFUSAL_RATE,
        "train_images": len(fit_set),
        "held_out": len(validation),
        "contenders": {},
    }
    # The written characters' banks, made once per process as the datasets are loaded and before any clock starts
    # (training makes them first too): the BNN and the outlier-exposure ablation draw from the same ones.
    started = time.perf_counter()
    prepare_contrast(c.BNN_TRAINING)
    results["glyph_bank_seconds"] = time.perf_counter() - started

    # The BNN, as make train trains it, with its forced accuracy (100 networks) after every epoch.
    trained = TrainedBNN.untrained(BNNConfig(num_data=len(fit_set)), seed=args.seed)
    trajectory = c.Trajectory()

    def after_epoch(summary: dict[str, Any]) -> None:
        probs = summarise(trained, test.images, NETWORKS, seed=args.seed).mean_probs
        trajectory.add(summary["seconds"], (probs.argmax(-1) == test.labels).float().mean().item())

    print("training the BNN ...", flush=True)
    train(trained, fit_set, TrainConfig(epochs=args.epochs, seed=args.seed), progress=False, on_epoch=after_epoch)
    # Its calibration trains the density model whose scores the gate gives every contender.
    calibration = calibrate(
        trained, validation, fit_set, CalibrationConfig(held_out=len(validation)), seed=args.seed, progress=False
    )

    def density(images: torch.Tensor, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The density model's scores of each image under the class a contender answers (its argmax), as the gate's."""
        return density_scores(
            calibration.vae, images, probs.argmax(-1), calibration.vae_particles, SCORING_SEED, calibration.has_class_doubt
        )

    def measure(name: str, probs_of: Any, trajectory: c.Trajectory, networks: int) -> None:
        started = time.perf_counter()
        test_probs = probs_of(test.images)
        predict_seconds = time.perf_counter() - started
        validation_probs = probs_of(validation.images)
        validation_entropy = c.entropy(validation_probs)
        held_out = {"entropy": validation_entropy, **density(validation.images, validation_probs)}
        results["gate_components"] = list(held_out)
        row: dict[str, Any] = {
            "train_seconds": trajectory.seconds[-1],
            "epoch_seconds": trajectory.seconds[-1] / len(trajectory.seconds),
            "seconds_to_98": trajectory.seconds_to(0.98),
            "accuracy_by_epoch": trajectory.accuracy,
            "predict_seconds": predict_seconds,
            "networks": networks,
            "sets": {},
            "gated": {},
        }
        mnist = c.set_figures(test_probs, test.labels, validation_entropy)
        in_scores = -mnist.pop("entropy")  # larger: more in-distribution
        row["sets"]["MNIST"] = mnist
        gate = {"held_out": held_out, "alpha": DEFAULT_RULE.alpha}  # the BNN's calibrated rule's level, for everyone
        row["gated"]["MNIST"] = c.gated_figures(test_probs, test.labels, density(test.images, test_probs), **gate)
        for set_name, data in sets.items():
            probs = probs_of(data.images)
            f = c.set_figures(probs, data.labels, validation_entropy)
            out_scores = -f.pop("entropy")
            if (data.labels < 0).all():
                f["auroc"], f["fpr95"] = auroc(in_scores, out_scores), fpr_at_95_tpr(in_scores, out_scores)
            row["sets"][set_name] = f
            row["gated"][set_name] = c.gated_figures(probs, data.labels, density(data.images, probs), **gate)
        results["contenders"][name] = row
        print(f"{name}: {report.plain_json({k: v for k, v in row.items() if k != 'accuracy_by_epoch'})}", flush=True)

    measure("BNN (SVI, 100 networks)", lambda x: summarise(trained, x, NETWORKS, seed=args.seed).mean_probs, trajectory, NETWORKS)
    rule = DEFAULT_RULE  # the page gives its level, and seeds at different levels do not aggregate
    results["bnn_rule_alpha"] = rule.alpha
    results["bnn_calibrated_rule"] = {
        set_name: rule_figures(trained, data, rule) for set_name, data in {"MNIST": test, **sets}.items()
    }
    print(f"BNN, calibrated rule: {results['bnn_calibrated_rule']}", flush=True)

    for name, count, dropout, oe, passes in (
        ("MLP", 1, 0.0, 0.0, 1),
        (f"deep ensemble ({c.ENSEMBLE_SIZE} MLPs)", c.ENSEMBLE_SIZE, 0.0, 0.0, 1),
        (f"MC dropout ({NETWORKS} passes)", 1, c.DROPOUT, 0.0, NETWORKS),
        ("outlier exposure (MLP + contrast inputs)", 1, 0.0, c.OE_WEIGHT, 1),
    ):
        print(f"training {name} ...", flush=True)
        nets, trajectory = c.train_networks(fit_set, test, count, dropout, oe, args.epochs, args.seed)
        measure(name, lambda x, nets=nets, passes=passes: c.predictive(nets, x, passes), trajectory, count * passes)
    results["missing"] = missing
    text = report.contenders_page(results)
    print(text)
    if args.json:
        report.write_json(results, args.json)
    if args.page:
        Path(args.page).parent.mkdir(parents=True, exist_ok=True)
        Path(args.page).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
