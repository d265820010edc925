"""Prediction at scale: images per second and peak memory over 100,000 image files and 1,000,000 generated images.

Each case runs in its own process, so that its peak resident set size (``VmHWM``) is its own:

- ``files``: 100,000 PNGs (MNIST test digits as dark ink on light 40x40 pages, written to a
  temporary folder) read, preprocessed and answered by ``bnn-abstain predict``'s streaming path,
  with 0 and 2 DataLoader worker processes, answers written as CSV;
- ``generated``: 100,000 and 1,000,000 images made on the fly (MNIST test digits shifted by up to
  two pixels), already in MNIST's format, streamed through the same path.

Writes ``docs/predict_benchmark.json`` and the Prediction at scale section of the results page.

Example::

    python scripts/benchmark_predict.py --checkpoint checkpoints/bnn.pt
    python scripts/benchmark_predict.py --files 2000 --generated 2000 10000 --page ''   # a quick run
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bnn import DEFAULT_CHECKPOINT, load_model
from inference.data import load_mnist
from inference.evaluation import report
from inference.evaluation.sets import on_paper
from inference.evaluation.speed import peak_rss_bytes
from inference.predictive.streaming import ImageFiles, Item, predict_stream


class ShiftedDigits(Dataset):
    """``size`` images made on access: MNIST test digit ``i % len(digits)``, shifted by up to two pixels."""

    def __init__(self, digits: torch.Tensor, size: int):
        self.digits, self.size = digits.reshape(-1, 28, 28), size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Item:
        rng = np.random.default_rng(i)
        dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
        digit = torch.roll(self.digits[i % len(self.digits)], shifts=(dy, dx), dims=(0, 1))
        return digit.reshape(784), True, ""


def write_pages(digits: torch.Tensor, count: int, folder: Path) -> list[Path]:
    """``count`` PNGs of dark digits on light 40x40 pages."""
    paths = []
    for i in range(count):
        path = folder / f"{i // 10_000:03d}" / f"{i:07d}.png"
        path.parent.mkdir(exist_ok=True)
        on_paper(digits[i % len(digits)].reshape(28, 28).numpy(), 28, (40, 40), (6, 6)).save(path)
        paths.append(path)
    return paths


def run_case(args: argparse.Namespace) -> dict:
    """One case in this process: stream, write the CSV, and report throughput and the peak RSS."""
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    if args.case == "files":
        paths = sorted(Path(args.folder).rglob("*.png"))
        dataset: Dataset = ImageFiles(paths)
    else:
        dataset = ShiftedDigits(load_mnist(False, args.data_dir).images, args.count)
    start = time.perf_counter()
    answered = 0
    with open(Path(args.out), "w", newline="") as out:
        writer = csv.writer(out)
        for record in predict_stream(model, dataset, batch_size=512, workers=args.workers):
            writer.writerow([record["index"], record["prediction"], record["reason"]])
            answered += record["prediction"] is not None
    seconds = time.perf_counter() - start
    return {
        "case": args.case,
        "images": len(dataset),
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "images_per_second": round(len(dataset) / seconds, 1),
        "answered": answered,
        "peak_rss_mib": round(peak_rss_bytes() / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"default: {DEFAULT_CHECKPOINT}")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--files", type=int, default=100_000, help="image files to write and read (default: 100000)")
    p.add_argument("--generated", type=int, nargs="+", default=[100_000, 1_000_000], help="generated set sizes")
    p.add_argument("--results", default="docs/predict_benchmark.json", help="JSON output ('' to skip)")
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose Prediction at scale section to rewrite ('' to skip)",
    )
    # One case, in a child process (used by the parent run).
    p.add_argument("--case", choices=("files", "generated"), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)))
        return 0
    digits = load_mnist(False, args.data_dir).images
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        common = [sys.executable, __file__, "--checkpoint", args.checkpoint, "--out", f"{tmp}/answers.csv"]
        if args.data_dir:
            common += ["--data-dir", args.data_dir]
        cases = []
        if args.files:
            started = time.perf_counter()
            write_pages(digits, args.files, Path(tmp))
            print(f"wrote {args.files:,} PNGs in {time.perf_counter() - started:.0f} s", flush=True)
            cases += [["--case", "files", "--folder", tmp, "--workers", str(w)] for w in (0, 2)]
        cases += [["--case", "generated", "--count", str(n)] for n in args.generated]
        for case in cases:
            out = subprocess.run(common + case, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    text = report.scale_section(rows)
    print(text)
    if args.results:
        report.write_json({"cases": rows, "threads": torch.get_num_threads()}, args.results)
    if args.page:
        report.replace_between_markers(args.page, "scale", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
