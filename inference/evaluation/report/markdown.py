"""What every page shares: generated sections between markers, strict JSON, and figures as text."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def between_markers(text: str, name: str) -> str | None:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->``, or None."""
    start, end = markers(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def section_page(value: str) -> str:
    """The ``type`` of a script's ``--page`` whose section it rewrites: ``''`` (skip) or an existing page, checked as
    the arguments are read, so that a wrong path stops the script before its run rather than after it."""
    if value and not Path(value).is_file():
        raise argparse.ArgumentTypeError(
            f"no page at {value} (from {Path.cwd()}): give an existing results page whose section to rewrite, or '' to skip"
        )
    return value


def replace_between_markers(path: str | Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    path = Path(path)
    start, end = markers(name)
    text = path.read_text()
    if start not in text or end not in text:
        warnings.warn(f"{path} has no {start} ... {end} markers; left unchanged", stacklevel=2)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def plain_json(value: Any) -> Any:
    """JSON-ready: dataclasses via ``to_dict``, NaN and infinities as None (strict JSON has neither)."""
    if is_dataclass(value) and hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as strict JSON (no bare ``NaN``), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain_json(value), indent=2, allow_nan=False) + "\n")
    return path


def pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def mean_and_sd(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def mean_sd(values: list[float]) -> str:
    """Fractions as ``"98.19 ± 0.09%"`` (a single value as :func:`pct` writes it)."""
    mean, sd = mean_and_sd(values)
    return pct(mean) if len(values) == 1 else f"{100 * mean:.2f} ± {100 * sd:.2f}%"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table's lines: the header, its separator, and one line per row (cells as given)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]
