"""Answer image files (PNG, JPEG; folders and globs), or say "I don't know": ``bnn-abstain predict``.

Every image is brought to MNIST's format first (grayscale, inverted when the page is light,
cropped to the ink, fitted to 20x20, centred by mass); ``--no-preprocess`` skips that for
images that are already 28x28 white-on-black digits.

Example::

    bnn-abstain predict photo.jpg scans/ 'forms/**/*.png'
    bnn-abstain predict scans/ --json > answers.json
    bnn-abstain predict scans/ --csv > answers.csv
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from bnn import load_model
from inference.cli import add_config_flags, config_from_args, device
from inference.predictive import Rule, predict_with_abstain

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bnn import DEFAULT_CHECKPOINT

    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) or glob patterns")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"trained model (default: {DEFAULT_CHECKPOINT})")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    out.add_argument("--csv", action="store_true", help="print CSV with a header row")
    p.add_argument("--no-preprocess", dest="preprocess", action="store_false", help="the images are already MNIST-like")
    p.add_argument("--rule", choices=("median", "calibrated"), default=None, help="default: calibrated if the model is")
    p.add_argument("--batch-size", type=int, default=256, help="images read and answered at a time (default: 256)")
    add_config_flags(p, Rule, skip=("max_risk", "delta"))
    return p


def image_files(paths: list[str]) -> Iterator[Path]:
    """The image files named by ``paths`` (files, folders searched recursively, glob patterns), in order.

    Raises ``FileNotFoundError`` for a path that names nothing.
    """
    for text in paths:
        path = Path(text)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise FileNotFoundError(f"no PNG or JPEG file matches {text!r}")
            yield from files
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")


def read_image(path: Path) -> Image.Image:
    """The decoded image at ``path``; ``ValueError`` naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read {path} as an image: {err}") from None


def _batches(files: Iterator[Path], size: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for path in files:
        batch.append(path)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def answer_files(model: Any, files: Iterator[Path], args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """One record per file: its answer, candidates and reason (or the error that kept it from being read)."""
    rule = config_from_args(Rule, args)
    for batch in _batches(files, args.batch_size):
        records: dict[int, dict[str, Any]] = {}
        images: dict[int, Image.Image] = {}
        for i, path in enumerate(batch):
            try:
                images[i] = read_image(path)
            except ValueError as err:
                records[i] = {"path": str(path), "answer": None, "prediction": None, "candidates": [],
                              "reason": "unreadable", "error": str(err)}  # fmt: skip
        if images:
            result = predict_with_abstain(
                model,
                list(images.values()),
                num_samples=rule.num_samples,
                threshold=rule.threshold,
                percentile=rule.percentile,
                rule=args.rule,
                alpha=rule.alpha,
                preprocess="mnist" if args.preprocess else None,
            )
            answers = zip(result.answers(), result.prediction.tolist(), result.candidate_sets(), result.reasons(), strict=True)
            for j, (i, (text, prediction, candidates, reason)) in enumerate(zip(images, answers, strict=True)):
                records[i] = {
                    "path": str(batch[i]),
                    "answer": text,
                    "prediction": None if prediction < 0 else prediction,
                    "candidates": candidates,
                    "reason": reason,
                    "p_value": None if result.p_value is None else round(float(result.p_value[j]), 6),
                }
        yield from (records[i] for i in range(len(batch)))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be a positive integer, got {args.batch_size}")
    try:
        files = list(image_files(args.paths))
        if not files:
            raise FileNotFoundError(f"no PNG or JPEG files in {' '.join(args.paths)}")
        model = load_model(args.checkpoint, args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    records = answer_files(model, iter(files), args)
    unreadable = 0
    if args.json:
        rows = list(records)
        unreadable = sum(r["reason"] == "unreadable" for r in rows)
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        writer = csv.writer(sys.stdout) if args.csv else None
        if writer:
            writer.writerow(["path", "prediction", "candidates", "reason"])
        for r in records:
            unreadable += r["reason"] == "unreadable"
            if writer:
                prediction = "" if r["prediction"] is None else r["prediction"]
                writer.writerow([r["path"], prediction, " ".join(map(str, r["candidates"])), r["reason"]])
            elif r["reason"] == "unreadable":
                print(f"{r['path']}: unreadable ({r['error']})")
            else:
                candidates = ", ".join(map(str, r["candidates"])) or "none"
                print(f"{r['path']}: {r['answer']} (candidates: {candidates}; {r['reason']})", flush=True)
    if unreadable:
        print(f"{unreadable} of {len(files)} files could not be read", file=sys.stderr)
    return 1 if unreadable else 0
