"""Training speed on one machine: the built-in loop, Lightning in one process, and Lightning with 2 DDP processes.

Every run trains the default model on the default 55,000 digits at the default global batch
(1024) through ``bnn-abstain train``, for ``--epochs`` epochs; the figure is the median epoch time
after the first (which pays for start-up). Writes ``docs/distributed_benchmark.json`` and the
Training across processes section of the results page.

Example::

    python scripts/benchmark_distributed.py --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bnn import load_checkpoint
from inference.evaluation import report

RUNS = {
    "built-in loop (1 process)": [],
    "Lightning, 1 process": ["--devices", "1"],
    "Lightning, 2 processes (DDP, gloo)": ["--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    p.add_argument("--results", default="docs/distributed_benchmark.json", help="JSON output ('' to skip)")
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose Training across processes section to rewrite ('' to skip)",
    )
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in RUNS.items():
            cmd = [sys.executable, "-m", "inference", "train", "--epochs", str(args.epochs), "--no-eval", "--no-progress"]
            cmd += ["--held-out", "0", "--checkpoint", f"{tmp}/bnn.pt", *flags]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            started = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - started
            history = load_checkpoint(Path(tmp) / "bnn.pt")[1]["history"]
            epoch = statistics.median(h["seconds"] for h in history[1:]) if len(history) > 1 else history[0]["seconds"]
            rows.append(
                {"run": name, "epoch_seconds": round(epoch, 2), "wall_seconds": round(wall, 1), "final_loss": history[-1]["loss"]}
            )
            print(rows[-1], flush=True)
    base = rows[0]["epoch_seconds"]
    for row in rows:
        row["speedup"] = round(base / row["epoch_seconds"], 2)
    if args.results:
        report.write_json({"runs": rows, "epochs": args.epochs, "threads": torch.get_num_threads()}, args.results)
    if args.page:
        report.replace_between_markers(args.page, "processes", report.processes_section(rows))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
