"""Near-digit study: which training reads other writers' digits and refuses handwriting that is no digit.

Each configuration trains as ``make train`` does; the choice uses only held-out training digits and
transformations of them fixed in advance (``inference.evaluation.near_study.select``); every evaluation
set is reported beside it, never used to choose. Results accumulate in the JSON, so an interrupted study
continues where it stopped.

Example::

    python scripts/near_study.py --data-dir /path/to/data                          # every configuration, seed 0
    python scripts/near_study.py --only "distortions, near contrast 0.5" --seeds 1 2   # more seeds of one
    python scripts/near_study.py --only "<candidate>" "<incumbent>" --seeds 3 4 5 \
        --replicate "<candidate>" "<incumbent>" --bar -0.004 \
        --json docs/near_replication.json --page docs/near_replication.md            # a paired replication
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inference.data import DATA_DIR_ENV
from inference.evaluation import near_study, report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    p.add_argument("--only", nargs="*", choices=list(near_study.CONFIGURATIONS), help="configurations to run (default: all)")
    p.add_argument("--seeds", nargs="*", type=int, default=[0], help="seeds per configuration (default: 0)")
    p.add_argument("--json", default="docs/near_study.json", help="results, read first and extended")
    p.add_argument("--page", default="docs/near_study.md", help="markdown page")
    p.add_argument(
        "--networks",
        default=None,
        help="keep the trained networks here, for trials that differ only in the gate (empty it after changing training code)",
    )
    p.add_argument(
        "--replicate",
        nargs=2,
        metavar=("CANDIDATE", "INCUMBENT"),
        choices=list(near_study.CONFIGURATIONS),
        help="write the page of a paired comparison on fresh seeds (give its own --json and --page) instead of a choice",
    )
    p.add_argument("--bar", type=float, default=None, help="with --replicate: the mean paired difference to reach (<= 0)")
    args = p.parse_args(argv)
    if (args.replicate is None) != (args.bar is None):
        p.error("--replicate and --bar go together: fix the bar before the seeds run")
    path = Path(args.json)
    trials = near_study.from_dict(json.loads(path.read_text())) if path.is_file() else []
    done = {(t.name, t.seed) for t in trials}
    for name in args.only or list(near_study.CONFIGURATIONS):
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            print(f"training {name!r}, seed {seed} ...", flush=True)
            trial = near_study.run_trial(name, near_study.CONFIGURATIONS[name], args.data_dir, seed, networks=args.networks)
            trials.append(trial)
            print(f"  selection: {trial.selection}\n  test: {trial.test}", flush=True)
            report.write_json(near_study.as_dict(trials), path)
    chosen = near_study.select(trials)
    replication = near_study.replicate(trials, *args.replicate, args.bar) if args.replicate else None
    page = Path(args.page)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(report.near_study_page(trials, chosen, near_study.default_configuration(), replication))
    if replication:
        print(f"replicates: {replication.replicates} (mean difference {replication.mean_difference:+.4f}); ", end="")
    else:
        print(f"chosen on the selection digits: {chosen!r}; ", end="")
    print(f"wrote {path} and {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
