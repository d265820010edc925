"""Speed benchmark: SVI against plain training, the predictive against its floor, memory, and the full run.

Every ratio compares figures measured in this one run, on this machine, on the same data.
Prints a table and writes JSON plus the "Speed" section of the results page.

Example::

    python scripts/benchmark.py --data-dir /path/to/data            # about 10 minutes on 2 cores
    python scripts/benchmark.py --train-limit 2048 --test-limit 512 --no-full-train   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bnn import BNNConfig, TrainedBNN
from inference.commands.flags import device
from inference.data import DATA_DIR_ENV, load_mnist
from inference.evaluation import report
from inference.evaluation import speed as bench
from inference.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    p.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions per timing; medians are reported (default: 3)")
    p.add_argument("--train-limit", type=int, default=None, help="time epochs on the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="time the predictive on the first N test images")
    p.add_argument("--large", type=int, default=100_000, help="inputs for the second memory probe (default: 100000)")
    p.add_argument("--no-full-train", action="store_true", help="skip timing the full default training + evaluation")
    p.add_argument("--json", default="docs/benchmark.json", help="JSON output (default: docs/benchmark.json)")
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose Speed section to rewrite ('' to skip)",
    )
    p.add_argument("--rss-probe", type=int, default=None, help=argparse.SUPPRESS)
    return p


def rss_probe(num_inputs: int) -> dict[str, int]:
    """Run in a child process: RSS just before predicting on ``num_inputs`` random images, and the peak after."""
    from inference import predict_with_abstain

    trained = TrainedBNN.untrained(BNNConfig(), "cpu", seed=0)
    images = torch.rand(num_inputs, 784)
    predict_with_abstain(trained, images[:10], mode="median")  # load the kernels before measuring
    before = bench.current_rss_bytes()
    predict_with_abstain(trained, images, mode="median")
    return {"inputs": num_inputs, "rss_before": before, "peak_after": bench.peak_rss_bytes()}


def measure_rss(num_inputs: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-probe", str(num_inputs)], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_train(data_dir: str | None, train_args: list[str] | None = None) -> dict[str, Any]:
    """Time ``scripts/train.py`` with its defaults (training + evaluation; ``train_args`` overrides them), outputs in a
    temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "scripts/train.py", "--no-progress", "--checkpoint", f"{tmp}/bnn.pt"]
        cmd += ["--results", tmp, "--page", "", *(train_args or [])]  # --results is a folder: it writes results.json there
        cmd += ["--data-dir", data_dir] if data_dir else []
        started = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        results = json.loads(Path(f"{tmp}/results.json").read_text())
    return {
        "seconds": seconds,
        "train_seconds": results["training"]["seconds"],
        "evaluate_seconds": results["seconds"],
        "forced_accuracy": results["mnist"]["forced_accuracy"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = args.device
    train_set = load_mnist(True, args.data_dir).head(args.train_limit)
    test_set = load_mnist(False, args.data_dir).head(args.test_limit)
    default = TrainConfig()
    out: dict[str, Any] = {"machine": _machine(device), "repeats": args.repeats, "train_images": len(train_set)}

    print(f"timing epochs on {len(train_set):,} images, batch {default.batch_size} ...", flush=True)
    estimator = {True: "local reparameterisation", False: "weight sampling"}
    other = replace(default, local_reparam=not default.local_reparam)
    svi = {
        f"default ({estimator[default.local_reparam]})": bench.svi_epoch_seconds(train_set, default, device, args.repeats),
        estimator[other.local_reparam]: bench.svi_epoch_seconds(train_set, other, device, args.repeats),
    }
    deterministic = bench.deterministic_epoch_seconds(train_set, default.batch_size, device, args.repeats)
    deterministic_128 = bench.deterministic_epoch_seconds(train_set, 128, device, args.repeats)
    plain_pyro = bench.plain_pyro_epoch_seconds(train_set, device)
    steps = -(-len(train_set) // default.batch_size)
    out["epoch"] = {
        "batch_size": default.batch_size,
        "steps": steps,
        "deterministic_seconds": deterministic,
        "svi_seconds": svi,
        "svi_ratio": {k: v / deterministic for k, v in svi.items()},
        "deterministic_batch128_seconds": deterministic_128,
        "plain_pyro_batch128_seconds": plain_pyro,
        "plain_pyro_ratio": plain_pyro / deterministic_128,
    }

    print(f"timing the predictive on {len(test_set):,} images x 100 networks ...", flush=True)
    trained = TrainedBNN.untrained(BNNConfig(), device, seed=0)
    predict = {m: bench.predict_seconds(trained, test_set.images, m, args.repeats) for m in ("weights", "local")}
    bench.attach_timing_calibration(trained)
    predict["local, calibrated rule"] = bench.predict_seconds(trained, test_set.images, "local", args.repeats, mode="calibrated")
    bench.attach_timing_calibration(trained, density=bench.AS_FILED_DENSITY, fisher_combination=False)
    predict[bench.AS_FILED_KEY] = bench.predict_seconds(
        trained, test_set.images, "local", args.repeats, mode="calibrated", chunk_size=bench.AS_FILED_CHUNK
    )
    floor = bench.matmul_floor_seconds(trained, test_set.images, args.repeats)
    local_floor = bench.local_floor_seconds(trained, test_set.images, args.repeats)
    reference = bench.reference_loop_seconds(trained, test_set.images)
    out["predict"] = {
        "images": len(test_set),
        "seconds": predict,
        "matmul_floor_seconds": floor,
        "local_floor_seconds": local_floor,
        "floor_ratio": {k: v / floor for k, v in predict.items()},
        "own_floor_ratio": {k: v / (floor if k == "weights" else local_floor) for k, v in predict.items()},
        "reference_loop_seconds": reference,
        "speedup_vs_reference": {k: reference / v for k, v in predict.items()},
    }

    print("measuring peak memory of the predictive ...", flush=True)
    out["memory"] = [measure_rss(n) for n in (len(test_set), args.large)]

    if not args.no_full_train:
        print("timing the full default training + evaluation (scripts/train.py) ...", flush=True)
        out["full_train"] = full_train(args.data_dir)
    return out


def _machine(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": str(device), "name": name, "threads": torch.get_num_threads(), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.rss_probe is not None:
        print(json.dumps(rss_probe(args.rss_probe)))
        return 0
    torch.manual_seed(0)
    results = run(args)
    rows = report.speed_rows(results)
    width = max(len(a) for a, _, _ in rows)
    for a, b, c in rows:
        print(f"{a:<{width}}  {b}  [{c}]")
    report.publish_speed(results, args.json, [args.page] if args.page else [])
    print(f"wrote {args.json}" + (f" and the Speed section of {args.page}" if args.page else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
