"""Mutation testing of the runtime code (mutmut 3) and the Mutation section of the results page.

The mutated modules and the tests run against them are set in ``[tool.mutmut]`` of pyproject.toml:
``bnn/`` and the training (less its Lightning wrapper), posterior, predictive, input and calibration modules
of ``inference/``. A mutant is killed when some test fails with it; the score is killed / (killed + survived).

Testing every mutant takes hours on 2 cores, so ``--sample N`` tests a uniform random sample of N
mutants (seeded) and reports the score with its 95% Wilson interval.

Example::

    pip install mutmut && python scripts/mutation.py --sample 400      # about 15 min on 2 cores (mutmut 3.8)
    python scripts/mutation.py --no-run --sample 400                    # summarise that run again
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

from scipy.stats import binomtest

from inference.evaluation import report

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]
#: mutmut 3 has no generate-only command: a run filtered to a name that matches nothing generates the
#: mutants and collects which tests cover which function, then stops on its "nothing matches" assertion.
_MATCHES_NOTHING = "generate-only-matches-no-mutant"
#: mutmut forks a child per mutant from a process that has run torch; a child forked while an OpenMP
#: pool exists can hang forever without using CPU (so mutmut's CPU-time limit never fires). One thread each.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mutant_verdicts() -> dict[str, str]:
    """Every generated mutant and mutmut's verdict on it ('killed', 'survived', 'not checked', ...)."""
    listing = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, check=True, capture_output=True, text=True)
    verdicts = {}
    for line in listing.stdout.splitlines():
        name, sep, verdict = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            verdicts[name] = verdict
    return verdicts


def sample_mutants(names: list[str], size: int | None, seed: int) -> list[str]:
    """A uniform random sample of ``size`` mutant names (all of them when ``size`` is None)."""
    names = sorted(names)
    if size is None or size >= len(names):
        return names
    return sorted(random.Random(seed).sample(names, size))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose Mutation section to rewrite ('' to skip)",
    )
    p.add_argument("--sample", type=int, default=None, help="test a random sample of this many mutants (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    p.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default: 2)")
    p.add_argument("--no-run", dest="run", action="store_false", help="only summarise the last run")
    args = p.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        p.error("--sample must be a positive integer")
    if args.run:
        subprocess.run(
            [*MUTMUT, "run", _MATCHES_NOTHING], cwd=ROOT, check=False, capture_output=True, env=os.environ | ONE_THREAD
        )
    verdicts = mutant_verdicts()
    if not verdicts:
        p.error("no mutants found: run without --no-run first")
    chosen = sample_mutants(list(verdicts), args.sample, args.seed)
    if args.run:
        subprocess.run(
            [*MUTMUT, "run", "--max-children", str(args.max_children), *chosen],
            cwd=ROOT,
            check=False,
            env=os.environ | ONE_THREAD,
        )
        verdicts = mutant_verdicts()
    missing = [name for name in chosen if name not in verdicts]
    if missing:
        p.error(f"mutmut gave no verdict on {len(missing)} mutants (did its test run fail? see above), e.g. {missing[0]}")
    outcome = [verdicts[name] for name in chosen]
    counts = {v: outcome.count(v) for v in ("killed", "survived", "timeout", "no tests", "not checked")}
    decided = counts["killed"] + counts["survived"]
    interval = binomtest(counts["killed"], decided).proportion_ci(method="wilson") if decided else None
    survivors = [name for name in chosen if verdicts[name] == "survived"]
    text = report.mutation_section(
        total=len(verdicts), tested=len(chosen), seed=args.seed, counts=counts, interval=interval, survivors=survivors
    )
    print(text)
    if args.page:
        report.replace_between_markers(args.page, "mutation", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
