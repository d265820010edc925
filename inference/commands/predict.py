"""Answer image files (PNG, JPEG, HEIC; folders and globs), or say "I don't know": ``bnn-abstain predict``.

Every image is brought to MNIST's format first (grayscale, inverted when the page is light,
cropped to the ink, fitted to 20x20, centred by mass); ``--no-preprocess`` skips that for
images that are already 28x28 white-on-black digits. Folders of any size stream through in
batches; ``--workers`` reads and preprocesses them in that many processes.

Example::

    bnn-abstain predict photo.jpg scans/ 'forms/**/*.png'
    bnn-abstain predict scans/ --json > answers.json
    bnn-abstain predict archive/ --csv --output answers.csv --workers 2
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from bnn import load_model
from inference.commands.flags import add_config_flags, config_from_args, device
from inference.predictive import MODES, Rule
from inference.predictive.streaming import ImageFiles, predict_stream

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".heic", ".heif"}


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
    p.add_argument("--output", default=None, help="write to this file instead of standard output")
    p.add_argument("--no-preprocess", dest="preprocess", action="store_false", help="the images are already MNIST-like")
    p.add_argument("--mode", choices=MODES, default=None, help="median or calibrated rule (default: calibrated if the model is)")
    p.add_argument("--rule", dest="old_mode", choices=MODES, default=None, help=argparse.SUPPRESS)  # the old name of --mode
    p.add_argument("--batch-size", type=int, default=512, help="images answered at a time (default: 512)")
    p.add_argument("--workers", type=int, default=0, help="processes reading and preprocessing images (default: 0)")
    p.add_argument("--progress", action="store_true", help="a progress bar on standard error")
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
                raise FileNotFoundError(f"no PNG, JPEG or HEIC file matches {text!r}")
            yield from files
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")


def write(records: Iterator[dict[str, Any]], files: list[Path], args: argparse.Namespace, out: TextIO) -> int:
    """Write the records as text, JSON or CSV; return how many files could not be read."""
    unreadable = 0
    writer = csv.writer(out) if args.csv else None
    if writer:
        writer.writerow(["path", "prediction", "candidates", "reason"])
    if args.json:
        out.write("[")
    for n, r in enumerate(records):
        path = str(files[r.pop("index")])
        unreadable += r["reason"] == "unreadable"
        if args.json:
            out.write(("," if n else "") + "\n " + json.dumps({"path": path, **r}))
        elif writer:
            writer.writerow(
                [path, "" if r["prediction"] is None else r["prediction"], " ".join(map(str, r["candidates"])), r["reason"]]
            )
        elif r["reason"] == "unreadable":
            print(f"{path}: unreadable ({r['error']})", file=out)
        else:
            candidates = ", ".join(map(str, r["candidates"])) or "none"
            print(f"{path}: {r['answer']} (candidates: {candidates}; {r['reason']})", file=out, flush=True)
    if args.json:
        out.write("\n]\n")
    return unreadable


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.workers < 0:
        p.error("--batch-size must be positive and --workers at least 0")
    try:
        files = list(image_files(args.paths))
        if not files:
            raise FileNotFoundError(f"no PNG, JPEG or HEIC files in {' '.join(args.paths)}")
        model = load_model(args.checkpoint, args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.old_mode is not None:
        print("bnn-abstain predict: --rule is deprecated, use --mode", file=sys.stderr)
    records = predict_stream(
        model,
        ImageFiles(files, preprocess=args.preprocess),
        batch_size=args.batch_size,
        workers=args.workers,
        progress=args.progress,
        rule=config_from_args(Rule, args),
        mode=args.mode or args.old_mode,
    )
    if args.output:
        with open(args.output, "w", newline="") as out:
            unreadable = write(records, files, args, out)
        print(f"wrote {len(files):,} answers to {args.output}", file=sys.stderr)
    else:
        unreadable = write(records, files, args, sys.stdout)
    if unreadable:
        print(f"{unreadable} of {len(files)} files could not be read", file=sys.stderr)
    return 1 if unreadable else 0
