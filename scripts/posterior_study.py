"""Posterior study: train configurations and measure each under the median rule alone (issue: a better posterior).

Each configuration trains on the training split; the choice among them uses the held-out split
of training digits only (``inference.evaluation.study.select``); test-set figures are reported.
Results accumulate in the JSON, so an interrupted study continues where it stopped.

Example::

    python scripts/posterior_study.py --data-dir /path/to/data                       # every configuration, seed 0
    python scripts/posterior_study.py --only "cosine lr, NCP 0.3" --seeds 0 1 2      # one configuration, three seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inference.data import DATA_DIR_ENV
from inference.evaluation import report, study


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help=f"dataset folder (default: ${DATA_DIR_ENV}, else ./data)")
    p.add_argument("--only", nargs="*", choices=list(study.CONFIGURATIONS), help="configurations to run (default: all)")
    p.add_argument("--seeds", nargs="*", type=int, default=[0], help="seeds per configuration (default: 0)")
    p.add_argument("--json", default="docs/posterior_study.json", help="results, read first and extended")
    p.add_argument("--page", default="docs/posterior_study.md", help="markdown page; its figure goes next to it")
    args = p.parse_args(argv)
    path = Path(args.json)
    trials = study.from_dict(json.loads(path.read_text())) if path.is_file() else []
    done = {(t.name, t.seed) for t in trials}
    for name in args.only or list(study.CONFIGURATIONS):
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            print(f"training {name!r}, seed {seed} ...", flush=True)
            trial = study.run_trial(name, study.CONFIGURATIONS[name], args.data_dir, seed)
            trials.append(trial)
            print(f"  held out: {trial.validation}\n  test: {trial.test}", flush=True)
            report.write_json(study.as_dict(trials), path)
    chosen = study.select(trials)
    page = Path(args.page)
    page.parent.mkdir(parents=True, exist_ok=True)
    from inference.evaluation import plots

    plots.study_tradeoff(trials, chosen).savefig(page.parent / "posterior_study.png", dpi=110)
    page.write_text(report.study_page(trials, chosen, "posterior_study.png"))
    print(f"chosen on the held-out split: {chosen!r}; wrote {path} and {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
