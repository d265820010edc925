"""Calibrate (or re-calibrate) a trained checkpoint's abstention rule on the digits its training held out.

The held-out split is the one recorded in the checkpoint's training state, so the digits
are ones the network never saw. A checkpoint trained on every training image has no such
split: train again (``make train`` holds 5,000 digits out by default).

Example::

    bnn-abstain calibrate --checkpoint checkpoints/bnn.pt --vae-epochs 20
"""

from __future__ import annotations

import argparse
import sys

from bnn import load_checkpoint, save_checkpoint
from inference.calibration import CalibrationConfig, calibrate
from inference.commands.flags import add_common_flags, add_config_flags, config_from_args
from inference.data import DatasetNotFoundError, load_mnist, split_calibration
from inference.predictive import Rule


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_flags(p, "checkpoint to calibrate, rewritten in place")
    add_config_flags(p, CalibrationConfig, skip=("held_out",))
    add_config_flags(p, Rule, skip=("threshold", "alpha", "max_risk", "delta"))
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    try:
        trained, state = load_checkpoint(args.checkpoint, args.device)
        recorded = (state or {}).get("calibration_config")
        if not recorded or not recorded.get("held_out"):
            raise ValueError(
                f"{args.checkpoint} records no held-out split: its network may have seen every training image, so none "
                "can calibrate it. Train it again with held-out digits (the default of scripts/train.py)."
            )
        assert state is not None
        full = load_mnist(True, args.data_dir).head(state.get("train_limit"))
        fit_set, held_out = split_calibration(full, recorded["held_out"], state["train_config"]["seed"])
        config = config_from_args(CalibrationConfig, args, held_out=len(held_out))
        rule = config_from_args(Rule, args)
        seed = state["train_config"]["seed"]
        calibrate(
            trained,
            held_out,
            fit_set,
            config,
            num_samples=rule.num_samples,
            percentile=rule.percentile,
            split_seed=seed,
            seed=seed,
            progress=args.progress,
        )
        state["calibration_config"] = vars(config)
        save_checkpoint(args.checkpoint, trained, state)
    except (DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"calibrated {args.checkpoint} on {len(held_out):,} held-out digits")
    return 0
