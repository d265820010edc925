"""Mutation testing of the runtime code (mutmut 3) and the Mutation section of the results page.

The mutated modules and the tests run against them are set in ``[tool.mutmut]`` of pyproject.toml:
``bnn/`` and the training, predictive, input and calibration modules of ``inference/``. A
mutant is killed when some test fails with it; the score is killed / (killed + survived).

Example::

    pip install mutmut && python scripts/mutation.py      # about an hour on 2 cores; resumable
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from inference.evaluation import report

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--page", default="docs/results.md", help="results page whose Mutation section to rewrite ('' to skip)")
    p.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default: 2)")
    p.add_argument("--no-run", dest="run", action="store_false", help="only summarise the last run")
    args = p.parse_args(argv)
    mutmut = [sys.executable, "-m", "mutmut"]
    if args.run:
        subprocess.run([*mutmut, "run", "--max-children", str(args.max_children)], cwd=ROOT, check=False)
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=ROOT, check=True, capture_output=True)
    stats = json.loads((ROOT / "mutants" / "mutmut-cicd-stats.json").read_text())
    listing = subprocess.run([*mutmut, "results"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    survivors = [line.split(":")[0].strip() for line in listing.splitlines() if line.strip().endswith(": survived")]
    text = report.mutation_section(stats, survivors)
    print(text)
    if args.page:
        report.replace_between_markers(args.page, "mutation", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
