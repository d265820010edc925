"""Train the Bayesian MLP on MNIST by SVI, save a checkpoint, then print the evaluation table.

Example::

    python scripts/train.py --data-dir ../shared/data            # the default configuration
    python scripts/train.py --epochs 2 --no-eval                  # a quick run
    python scripts/train.py --resume                              # continue an interrupted run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn import BNNConfig, TrainedBNN, load_checkpoint  # noqa: E402
from inference.data import DatasetNotFoundError, load_mnist  # noqa: E402
from inference.training import TrainConfig, TrainingDivergedError, train  # noqa: E402
from scripts import _cli, evaluate  # noqa: E402

DEFAULTS = TrainConfig()
MODEL_DEFAULTS = BNNConfig()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--epochs",
        type=_cli.positive_int,
        default=DEFAULTS.epochs,
        help=f"passes over the training set (default: {DEFAULTS.epochs})",
    )
    p.add_argument(
        "--batch-size",
        type=_cli.positive_int,
        default=DEFAULTS.batch_size,
        help=f"minibatch size (default: {DEFAULTS.batch_size})",
    )
    p.add_argument(
        "--lr", type=_cli.positive_float, default=DEFAULTS.lr, help=f"Adam learning rate of the means (default: {DEFAULTS.lr})"
    )
    p.add_argument(
        "--scale-lr",
        type=_cli.positive_float,
        default=DEFAULTS.scale_lr,
        help=f"Adam learning rate of the standard deviations (default: {DEFAULTS.scale_lr})",
    )
    p.add_argument(
        "--kl-weight",
        type=_cli.positive_float,
        default=DEFAULTS.kl_weight,
        help=f"weight of the KL term; 1 is the plain ELBO (default: {DEFAULTS.kl_weight})",
    )
    p.add_argument(
        "--prior-scale",
        type=_cli.positive_float,
        default=MODEL_DEFAULTS.prior_scale,
        help=f"std of the Normal prior on every weight (default: {MODEL_DEFAULTS.prior_scale})",
    )
    p.add_argument(
        "--init-scale",
        type=_cli.positive_float,
        default=MODEL_DEFAULTS.init_scale,
        help=f"initial std of the guide (default: {MODEL_DEFAULTS.init_scale})",
    )
    p.add_argument(
        "--hidden-dim",
        type=_cli.positive_int,
        default=MODEL_DEFAULTS.hidden_dim,
        help=f"hidden units (default: {MODEL_DEFAULTS.hidden_dim})",
    )
    p.add_argument(
        "--no-local-reparam",
        dest="local_reparam",
        action="store_false",
        help="sample whole weight matrices per step instead of pre-activations",
    )
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help=f"random seed (default: {DEFAULTS.seed})")
    p.add_argument("--checkpoint", default="checkpoints/bnn.pt", help="checkpoint path (default: checkpoints/bnn.pt)")
    p.add_argument(
        "--checkpoint-every",
        type=_cli.nonnegative_int,
        default=DEFAULTS.checkpoint_every,
        help=f"also checkpoint every N steps, 0 for epoch ends only (default: {DEFAULTS.checkpoint_every})",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from --checkpoint (same configuration) instead of starting afresh"
    )
    p.add_argument(
        "--train-limit",
        type=_cli.positive_int,
        default=None,
        help="train on the first N training images only (quick runs, tests)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--no-eval", dest="evaluate", action="store_false", help="skip the evaluation after training")
    _cli.add_common(p)
    _cli.add_rule(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (DatasetNotFoundError, FileNotFoundError, ValueError, TrainingDivergedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; `--resume` continues from {args.checkpoint}", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    train_set = load_mnist(True, args.data_dir).head(args.train_limit)
    test_set = load_mnist(False, args.data_dir)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        scale_lr=args.scale_lr,
        kl_weight=args.kl_weight,
        local_reparam=args.local_reparam,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    state = None
    if args.resume:
        trained, state = load_checkpoint(args.checkpoint, args.device)
        if state is None:
            raise ValueError(f"{args.checkpoint} holds no training state to resume from")
        saved = TrainConfig.from_dict(state["train_config"])
        if saved != config:
            config = TrainConfig.from_dict({**saved.to_dict(), "epochs": args.epochs})
            print(f"resuming with the saved configuration {config}")
        print(f"resuming at epoch {state['epoch'] + 1}, step {state['step_in_epoch']}")
    else:
        model_config = BNNConfig(
            hidden_dim=args.hidden_dim, prior_scale=args.prior_scale, init_scale=args.init_scale, num_data=len(train_set)
        )
        trained = TrainedBNN.create(model_config, args.device, seed=args.seed)
    print(f"training {config} on {len(train_set):,} images, device {trained.device}")
    started = time.perf_counter()

    def report(summary: dict) -> None:
        acc = f", test accuracy (mean network) {summary['test_accuracy']:.4f}" if "test_accuracy" in summary else ""
        print(
            f"epoch {summary['epoch']:3d}: loss {summary['loss']:.4f} nats/example, {summary['seconds']:.1f} s{acc}", flush=True
        )

    history = train(
        trained,
        train_set,
        config,
        test_set=test_set,
        checkpoint=args.checkpoint,
        resume_state=state,
        progress=args.progress,
        on_epoch=report,
    )
    elapsed = time.perf_counter() - started
    print(f"saved {args.checkpoint} after {len(history)} epochs ({elapsed:.0f} s this run)")
    if args.evaluate:
        args.checkpoint = str(args.checkpoint)
        evaluate.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
