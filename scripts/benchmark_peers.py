"""This project beside the libraries a user would pick instead, on the same work, in one run.

Every contender (``inference/evaluation/peers.py``) trains a 784-1024-10 mean-field BNN with a
N(0, 1) prior on MNIST's 60,000 training digits, with the same batch size and epochs, in its own
process (so that its peak memory is its own), then samples 100 networks per test image. Writes
``docs/peers.md`` and ``docs/peers.json``.

Each peer library runs in a virtual environment of its own (:data:`OWN_ENVIRONMENTS`), created under
``--environments`` on first use, so that none of their packages enter the project's environment;
TyXe's also holds an older Pyro (it calls ``pyro.util.deep_getattr``, gone in Pyro 1.9). The child
process imports the project from the source tree.

Example::

    python scripts/benchmark_peers.py                         # about 20 minutes on 2 cores, environments made first
    python scripts/benchmark_peers.py --epochs 1 --limit 2000 --page '' --results ''   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from inference.data import ImageSet, load_mnist
from inference.evaluation import report
from inference.evaluation.peers import CONTENDERS, compile_probe, measure
from inference.evaluation.sets import load_fashion_mnist, load_notmnist, uniform_noise

ROOT = Path(__file__).resolve().parent.parent
#: The peer libraries' virtual environments, each with these pins on top of what the measuring code imports
#: (TyXe 0.0.2 needs Pyro < 1.9; bayesian-torch and torch-uncertainty run beside the project's Pyro).
OWN_ENVIRONMENTS = {
    "tyxe": ["pyro-ppl==1.8.6", "tyxe==0.0.2"],
    "bayesian-torch": ["pyro-ppl>=1.9", "bayesian-torch==0.5.0"],
    "torch-uncertainty": ["pyro-ppl>=1.9", "torch-uncertainty[cpu]==0.13.0"],
}
#: Which environment runs each contender (the others run in the project's).
ENVIRONMENT_OF = {
    "tyxe": "tyxe",
    "bayesian-torch": "bayesian-torch",
    "bayesian-torch-flipout": "bayesian-torch",
    "torch-uncertainty": "torch-uncertainty",
}
#: What the child process imports besides Pyro: the project's runtime dependencies, run from the source tree.
HARNESS = ["torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib", "tqdm", "pillow"]


def environment_python(key: str, root: Path) -> str:
    """The Python that runs contender ``key``: this one, or that of its environment under ``root`` (made on first use)."""
    name = ENVIRONMENT_OF.get(key)
    if name is None:
        return sys.executable
    venv = root / name
    python, stamp = venv / "bin" / "python", venv / ".installed"
    wanted = " ".join(HARNESS + OWN_ENVIRONMENTS[name])
    if not (stamp.is_file() and stamp.read_text() == wanted):
        print(f"creating {venv} for {name}: {wanted}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        if wanted:
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted.split()], check=True)
        stamp.write_text(wanted)
    return str(python)


def compared_distributions() -> list[str]:
    """torch, Pyro and every distribution pinned in a contender's environment (Pyro once), by distribution name."""
    pinned = [re.split(r"[\[<>=!~;\s]", pin, maxsplit=1)[0] for pins in OWN_ENVIRONMENTS.values() for pin in pins]
    return list(dict.fromkeys(["torch", "pyro-ppl", *pinned]))


def versions() -> dict[str, str]:
    """The installed versions of the libraries compared (or 'not installed')."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in compared_distributions():
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def run_one(args: argparse.Namespace) -> dict:
    train = load_mnist(True, args.data_dir).head(args.limit)
    test = load_mnist(False, args.data_dir).head(args.limit)
    ood = {
        "notMNIST": load_notmnist(args.data_dir),
        "FashionMNIST": load_fashion_mnist(False, args.data_dir).head(args.limit),
        "uniform noise": uniform_noise(min(10_000, args.limit or 10_000), seed=1),
    }
    ood = {name: ImageSet(name, s.images, s.labels) for name, s in ood.items()}
    return measure(args.contender, train, test, ood, epochs=args.epochs, batch_size=args.batch_size, timing_repeats=args.repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--epochs", type=int, default=10, help="epochs for every contender (default: 10)")
    p.add_argument("--batch-size", type=int, default=1024, help="batch size for every contender (default: 1024)")
    p.add_argument("--repeats", type=int, default=3, help="timings of the prediction, median taken (default: 3)")
    p.add_argument("--limit", type=int, default=None, help="cap every set at this size (smoke runs)")
    p.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS), help="contenders to run")
    p.add_argument("--results", default="docs/peers.json", help="JSON output ('' to skip)")
    p.add_argument("--page", default="docs/peers.md", help="markdown page ('' to skip)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile trial")
    p.add_argument(
        "--environments", type=Path, default=ROOT / ".venv-peers", help="where contenders with their own environment get it"
    )
    # One contender (or the torch.compile trial), in a child process.
    p.add_argument("--contender", choices=[*CONTENDERS, "compile"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.contender == "compile":
        print(json.dumps(compile_probe(load_mnist(True, args.data_dir).head(args.limit), repeats=args.repeats)))
        return 0
    if args.contender:
        print(json.dumps({**run_one(args), "versions": versions()}))
        return 0
    rows, pythons = [], {}
    keys = [*args.only, *(["compile"] if args.compile else [])]
    for key in keys:  # before the clock starts: installing is not the contenders' time
        try:
            pythons[key] = environment_python(key, args.environments)
        except subprocess.CalledProcessError as err:
            rows.append({"key": key, "error": f"its environment could not be made: {err}"})
    started = time.perf_counter()
    for key, python in pythons.items():
        cmd = [python, __file__, "--contender", key, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        cmd += ["--repeats", str(args.repeats)] + (["--limit", str(args.limit)] if args.limit else [])
        cmd += ["--data-dir", args.data_dir] if args.data_dir else []
        # The child imports the project from the source tree, whichever environment runs it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines()
            rows.append({"key": key, "error": lines[-1] if lines else f"exit status {out.returncode}"})
        else:
            rows.append({"key": key, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    setup = {"epochs": args.epochs, "batch_size": args.batch_size, "threads": torch.get_num_threads(), "limit": args.limit,
             "minutes": round((time.perf_counter() - started) / 60, 1), "versions": versions()}  # fmt: skip
    trial = next((r for r in rows if r.get("key") == "compile"), None)
    rows = [r for r in rows if r.get("key") != "compile"]
    page = report.peers_page(rows, setup, trial)
    print(page)
    if args.results:
        report.write_json({"setup": setup, "contenders": rows, "torch_compile": trial}, args.results)
    if args.page:
        with open(args.page, "w") as f:
            f.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
