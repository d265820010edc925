"""Train the Bayesian MLP on MNIST by SVI, calibrate its abstention rule on held-out digits, then evaluate it.

Example::

    bnn-abstain train --data-dir /path/to/data     # the default configuration
    bnn-abstain train --epochs 2 --no-eval           # a quick run
    bnn-abstain train --resume                       # continue an interrupted run
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from typing import Any

from bnn import BNNConfig, TrainedBNN, load_checkpoint, save_checkpoint
from inference.calibration import CalibrationConfig, calibrate, held_out_size
from inference.commands.flags import add_common_flags, add_config_flags, config_from_args, explicit_flags
from inference.data import DatasetNotFoundError, load_mnist, split_calibration
from inference.predictive import Rule
from inference.training import DistributedTrainingError, TrainConfig, TrainingDivergedError, train

#: Flags that may change when resuming: the rest must match the checkpoint.
RESUMABLE = {"epochs", "checkpoint_every"}
MODEL_FLAGS_SKIPPED = ("input_dim", "num_classes", "num_data")
#: Flags that switch training to Lightning (inference.training.lightning).
LIGHTNING_FLAGS = ("devices", "num_nodes", "accelerator", "strategy")


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_flags(p, "where to write the checkpoint")
    add_config_flags(p, TrainConfig)
    add_config_flags(p, BNNConfig, skip=MODEL_FLAGS_SKIPPED)
    add_config_flags(p, CalibrationConfig)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint instead of starting afresh")
    p.add_argument(
        "--train-limit",
        type=int,
        default=None,
        help="train on the first N training images only (quick runs; at most a tenth of them is held out)",
    )
    p.add_argument("--no-eval", dest="evaluate", action="store_false", help="skip the evaluation after training")
    scale = p.add_argument_group("Lightning (any of these trains on Lightning instead of the built-in loop)")
    scale.add_argument("--devices", default=None, help="processes per machine: a number, or 'auto'")
    scale.add_argument("--num-nodes", type=int, default=None, help="machines (default: 1)")
    scale.add_argument("--accelerator", choices=("cpu", "gpu", "auto"), default=None, help="default: cpu")
    scale.add_argument("--strategy", choices=("auto", "ddp"), default=None, help="ddp: one process per device (default: auto)")
    from inference.commands.results import add_evaluation_flags

    add_evaluation_flags(p)
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        return run(args, explicit_flags(p, argv if argv is not None else sys.argv[1:]))
    except (DatasetNotFoundError, FileNotFoundError, ValueError, TrainingDivergedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DistributedTrainingError as err:  # a process of a Lightning run failed
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; `--resume` continues from {args.checkpoint}", file=sys.stderr)
        return 130


def _check_resume(saved: dict[str, Any], requested: dict[str, Any], given: set[str]) -> None:
    changed = sorted(k for k in given - RESUMABLE if k in saved and saved[k] != requested[k])
    if changed:
        described = ", ".join(f"--{k.replace('_', '-')} {requested[k]} (checkpoint: {saved[k]})" for k in changed)
        raise ValueError(
            f"--resume continues the checkpoint's own configuration, and these flags differ from it: {described}. "
            f"Drop them, or start afresh without --resume. Only {sorted(RESUMABLE)} may change on resume."
        )


def run(args: argparse.Namespace, given: set[str]) -> int:
    if args.train_limit is not None and args.train_limit < 2:
        raise ValueError(f"--train-limit must be at least 2, got {args.train_limit}")
    config = config_from_args(TrainConfig, args)
    calibration = config_from_args(CalibrationConfig, args)
    state = None
    if args.resume:
        trained, state = load_checkpoint(args.checkpoint, args.device)
        if state is None:
            raise ValueError(f"{args.checkpoint} holds no training state to resume from")
        saved = state["train_config"] | state.get("calibration_config", {}) | trained.config.to_dict()
        saved["train_limit"] = state.get("train_limit")
        requested = config.to_dict() | vars(calibration) | {"train_limit": args.train_limit}
        requested |= {f.name: getattr(args, f.name) for f in fields(BNNConfig) if f.name not in MODEL_FLAGS_SKIPPED}
        _check_resume(saved, requested, given)
        config = TrainConfig.from_dict(state["train_config"] | {k: getattr(config, k) for k in RESUMABLE & given})
        calibration = CalibrationConfig(**state.get("calibration_config", vars(calibration)))
        args.train_limit = state.get("train_limit")
        print(f"resuming at epoch {state['epoch'] + 1}, step {state['step_in_epoch']}")
    full = load_mnist(True, args.data_dir).head(args.train_limit)
    size = held_out_size(len(full), calibration.held_out) if args.train_limit else calibration.held_out
    fit_set, held_out = split_calibration(full, size, config.seed)
    if not args.resume:
        model_config = config_from_args(BNNConfig, args, num_data=len(fit_set))
        trained = TrainedBNN.untrained(model_config, args.device, seed=config.seed)
    test_set = load_mnist(False, args.data_dir)
    print(f"training {config} on {len(fit_set):,} images ({len(held_out):,} held out), device {trained.device}")
    started = time.perf_counter()

    def report(summary: dict) -> None:
        acc = f", test accuracy (mean network) {summary['test_accuracy']:.4f}" if "test_accuracy" in summary else ""
        print(
            f"epoch {summary['epoch']:3d}: loss {summary['loss']:.4f} nats/example, {summary['seconds']:.1f} s{acc}", flush=True
        )

    extra_state = {"calibration_config": vars(calibration) | {"held_out": len(held_out)}, "train_limit": args.train_limit}
    if any(getattr(args, k) is not None for k in LIGHTNING_FLAGS):
        from inference.training.lightning import fit

        devices = args.devices or 1
        history, rank = fit(
            trained,
            fit_set,
            config,
            checkpoint=args.checkpoint,
            devices=int(devices) if str(devices).isdigit() else devices,
            num_nodes=args.num_nodes or 1,
            accelerator=args.accelerator or "cpu",
            strategy=args.strategy or "auto",
            resume_state=state,
            extra_state=extra_state,
            progress=args.progress,
        )
        if rank != 0:  # calibration, evaluation and the final save are rank 0's
            return 0
    else:
        history = train(
            trained,
            fit_set,
            config,
            test_set=test_set,
            checkpoint=args.checkpoint,
            resume_state=state,
            progress=args.progress,
            on_epoch=report,
            extra_state=extra_state,
            # Without a progress bar, a log line per checkpoint shows how far a run got.
            on_checkpoint=None if args.progress else lambda step: print(f"saved checkpoint at step {step}", flush=True),
        )
    print(f"trained {len(history)} epochs ({time.perf_counter() - started:.0f} s this run)")
    _, state = load_checkpoint(args.checkpoint)
    assert state is not None
    if len(held_out):
        t = time.perf_counter()
        rule = config_from_args(Rule, args)
        calibrate(
            trained,
            held_out,
            fit_set,
            calibration,
            num_samples=rule.num_samples,
            percentile=rule.percentile,
            split_seed=config.seed,
            seed=config.seed,
            progress=args.progress,
        )
        state["calibration_seconds"] = time.perf_counter() - t
        print(f"calibrated on {len(held_out):,} held-out digits ({state['calibration_seconds']:.0f} s)")
    save_checkpoint(args.checkpoint, trained, state)
    print(f"saved {args.checkpoint}")
    if args.evaluate:
        from inference.commands.results import evaluate_and_publish

        evaluate_and_publish(trained, state, args)
    return 0
