"""The evaluation table: MNIST, notMNIST, noise and FashionMNIST under the abstention rule."""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bnn import TrainedBNN
from inference.data import (
    DatasetNotFoundError,
    ImageSet,
    gaussian_noise,
    load_fashion_mnist,
    load_mnist,
    load_notmnist,
    uniform_noise,
)
from inference.metrics import auroc
from inference.predictive import Method, predict_with_abstain

#: The reference notebook's figures, for the results page.
REFERENCE = {
    "forced_accuracy": 0.89,
    "mnist_abstention": 0.125,
    "accepted_accuracy": 0.96,
    "uniform_noise_abstention": 0.95,
    "notmnist_abstention": 0.79,
}

#: Which results each dataset contributes, and how it is loaded.
OOD_SETS: dict[str, Callable[[str | None, int, int], ImageSet]] = {
    "notMNIST": lambda data_dir, n, seed: load_notmnist(data_dir),
    "uniform noise": lambda data_dir, n, seed: uniform_noise(n, seed),
    "Gaussian noise": lambda data_dir, n, seed: gaussian_noise(n, seed + 1),
    "FashionMNIST": lambda data_dir, n, seed: load_fashion_mnist(False, data_dir),
}


def evaluate(
    trained: TrainedBNN,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    num_samples: int = 100,
    threshold: float = 0.2,
    percentile: float = 50.0,
    method: Method = "local",
    noise_size: int = 10_000,
    seed: int = 0,
    limit: int | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run :func:`predict_with_abstain` on every evaluation set and collect the table.

    ``limit`` caps each set's size (for quick runs); the published figures use the full sets.
    With ``figures_dir``, the dataset-level plots are saved there as PNGs and listed in ``"figures"``.
    An OOD set whose files are missing is reported as missing rather than stopping the run;
    MNIST itself is required.
    """
    rule = dict(num_samples=num_samples, threshold=threshold, percentile=percentile, method=method, seed=seed)
    started = time.perf_counter()
    mnist = load_mnist(False, data_dir).head(limit)
    res = predict_with_abstain(trained, mnist.images, **rule, return_samples=figures_dir is not None)
    accepted = ~res.abstained
    correct = res.prediction == mnist.labels
    table: dict[str, Any] = {
        "MNIST": {
            "size": len(mnist),
            "forced_accuracy": (res.forced_prediction == mnist.labels).float().mean().item(),
            "abstention": res.abstained.float().mean().item(),
            "accepted_accuracy": correct[accepted].float().mean().item() if accepted.any() else float("nan"),
            "multi_candidate": (res.candidates.sum(-1) > 1).float().mean().item(),
        }
    }
    missing = {}
    for name, loader in OOD_SETS.items():
        try:
            data = loader(None if data_dir is None else str(data_dir), noise_size, seed).head(limit)
        except DatasetNotFoundError as err:
            warnings.warn(f"{name} left out of the evaluation: {err}", stacklevel=2)
            missing[name] = str(err)
            continue
        ood = predict_with_abstain(trained, data.images, **rule)
        table[name] = {
            "size": len(data),
            "abstention": ood.abstained.float().mean().item(),
            "auroc": auroc(res.score, ood.score),
        }
        if data.skipped:
            table[name]["skipped_files"] = len(data.skipped)
    figures = _save_figures(Path(figures_dir), table, res.samples, mnist.labels) if figures_dir is not None else {}
    return {
        "table": table,
        "figures": figures,
        "missing": missing,
        "rule": {k: v for k, v in rule.items() if k != "seed"} | {"seed": seed},
        "model": trained.config.to_dict(),
        "seconds": time.perf_counter() - started,
        "machine": {"platform": platform.platform(), "device": str(trained.device), "threads": torch.get_num_threads()},
    }


def _save_figures(folder: Path, table: dict[str, Any], samples: torch.Tensor, labels: torch.Tensor) -> dict[str, str]:
    from inference import plots

    folder.mkdir(parents=True, exist_ok=True)
    reference = {"MNIST": REFERENCE["mnist_abstention"], "notMNIST": REFERENCE["notmnist_abstention"]}
    reference["uniform noise"] = REFERENCE["uniform_noise_abstention"]
    figures = {
        "abstention_by_dataset.png": (
            plots.abstention_by_dataset({k: v["abstention"] for k, v in table.items()}, reference),
            "Fraction of each dataset refused",
        ),
        "rule_sweep.png": (
            plots.rule_sweep(samples, labels),
            "MNIST test: accuracy on answered against coverage, thresholds 0 to 0.95, three percentiles",
        ),
    }
    for name, (fig, _) in figures.items():
        fig.savefig(folder / name, dpi=110)
    return {name: caption for name, (_, caption) in figures.items()}


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(figure, ours, reference)`` rows of the headline table."""
    t, ref = results["table"], REFERENCE
    m = t["MNIST"]
    rows = [
        ("MNIST test: accuracy when forced", _pct(m["forced_accuracy"]), _pct(ref["forced_accuracy"])),
        ("MNIST test: abstention", _pct(m["abstention"]), _pct(ref["mnist_abstention"])),
        ("MNIST test: accuracy on accepted", _pct(m["accepted_accuracy"]), _pct(ref["accepted_accuracy"])),
    ]
    refs = {"notMNIST": _pct(ref["notmnist_abstention"]), "uniform noise": _pct(ref["uniform_noise_abstention"])}
    for name in OOD_SETS:
        if name in t:
            rows.append((f"{name} ({t[name]['size']:,}): refused", _pct(t[name]["abstention"]), refs.get(name, "—")))
    for name in ("notMNIST", "FashionMNIST"):
        if name in t:
            rows.append((f"AUROC MNIST vs {name} (max median probability)", f"{t[name]['auroc']:.4f}", "—"))
    return rows


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| figure | this project | reference notebook |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary_rows(results)]
    return "\n".join(lines)


def print_table(results: dict[str, Any]) -> None:
    rows = [("figure", "ours", "reference")] + summary_rows(results)
    width = max(len(r[0]) for r in rows)
    for a, b, c in rows:
        print(f"{a:<{width}}  {b:>8}  {c:>9}")
    for name, why in results.get("missing", {}).items():
        print(f"(missing: {name}: {why})")
    for name, row in results["table"].items():
        if row.get("skipped_files"):
            print(f"({name}: skipped {row['skipped_files']} unreadable file(s))")


def write_results(
    results: dict[str, Any],
    json_path: str | os.PathLike[str],
    page: str | os.PathLike[str] | None = None,
    readme: str | os.PathLike[str] | None = None,
) -> None:
    """Write the JSON, the markdown results page and the table inside the README's markers."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    if page is not None:
        page = Path(page)
        page.parent.mkdir(parents=True, exist_ok=True)
        kept = {name: between_markers(page.read_text(), name) for name in PAGE_SECTIONS} if page.is_file() else {}
        page.write_text(results_page(results, table, kept))
    if readme is not None and Path(readme).is_file():
        replace_between_markers(Path(readme), "results", table)


#: Sections of the results page that other scripts write: ``name: (heading, text until they run)``.
PAGE_SECTIONS = {
    "speed": ("Speed", "Not measured yet: run `python scripts/benchmark.py`."),
    "reliability": ("Reliability", "Not measured yet: run `python scripts/reliability.py`."),
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def between_markers(text: str, name: str) -> str | None:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->``, or None."""
    start, end = _markers(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def replace_between_markers(path: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    start, end = _markers(name)
    text = path.read_text()
    if start not in text or end not in text:
        warnings.warn(f"{path} has no {start} ... {end} markers; left unchanged", stacklevel=2)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def results_page(results: dict[str, Any], table: str, kept: dict[str, str | None] | None = None) -> str:
    """The markdown results page; ``kept`` holds the other scripts' sections from the previous page."""
    kept = kept or {}
    train = results.get("training", {})
    rule = results["rule"]
    lines = [
        "# Results",
        "",
        "Written by `scripts/evaluate.py` (also run at the end of `scripts/train.py`); do not edit by hand.",
        "",
        f"Decision rule: {rule['num_samples']} networks sampled from the posterior ({rule['method']!r} sampling), "
        f"a digit is a candidate when its {rule['percentile']:g}th-percentile probability exceeds {rule['threshold']}; "
        "no candidate means abstain. The reference is the notebook this project set out to beat.",
        "",
        table,
        "",
        "## Per set",
        "",
        "| set | size | refused | AUROC vs MNIST test |",
        "|---|---|---|---|",
    ]
    for name, row in results["table"].items():
        au = f"{row['auroc']:.4f}" if "auroc" in row else "—"
        lines.append(f"| {name} | {row['size']:,} | {_pct(row['abstention'])} | {au} |")
    for file, caption in results.get("figures", {}).items():
        lines += ["", f"![{caption}]({file})", "", f"*{caption}.*"]
    lines += ["", "## How it was made", ""]
    if train:
        lines += [
            f"- Training: {train.get('epochs')} epochs of SVI (mean-field ELBO), "
            f"{train.get('seconds', float('nan')):.0f} s wall-clock; configuration: `{json.dumps(train.get('config', {}))}`.",
        ]
    lines += [
        f"- Model: `{json.dumps(results['model'])}`.",
        f"- Evaluation: {results['seconds']:.0f} s on {results['machine']['device']} "
        f"({results['machine']['threads']} threads, {results['machine']['platform']}).",
    ]
    for name, why in results.get("missing", {}).items():
        lines.append(f"- Missing: {name}: {why}")
    for name, row in results["table"].items():
        if row.get("skipped_files"):
            lines.append(f"- {name}: skipped {row['skipped_files']} unreadable file(s).")
    for name, (heading, placeholder) in PAGE_SECTIONS.items():
        start, end = _markers(name)
        lines += ["", f"## {heading}", "", start, kept.get(name) or placeholder, end]
    return "\n".join(lines) + "\n"
