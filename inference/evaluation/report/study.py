"""The pages of the studies that chose the defaults: the posterior study and the near-digit study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference.evaluation.report.markdown import mean_sd, table

if TYPE_CHECKING:
    from inference.evaluation.near_study import NearTrial, Replication
    from inference.evaluation.study import Trial


def study_page(trials: list[Trial], chosen: str, figure: str) -> str:
    """The study page: every configuration's held-out and test figures (mean ± sd over seeds), and the choice."""
    names = list(dict.fromkeys(t.name for t in trials))
    test_keys = list(dict.fromkeys(k for t in trials for k in t.test))
    lines = [
        "# Posterior study: the median rule alone",
        "",
        "Written by `scripts/posterior_study.py`; do not edit by hand. Every configuration trains on 55,000 training "
        "digits; the choice uses only the 5,000 held-out training digits (`select` in `inference/evaluation/study.py`): "
        "at most 3% of them refused, at most 0.2 points of accuracy lost against the baseline, then the most refusals "
        "of a corrupted copy of them, compared over the seeds every configuration ran. The test columns are reported, "
        "never used to choose. Figures are mean ± sd over the seeds run.",
        "",
        f"**Chosen: {chosen}.**",
        "",
        "| configuration | seeds | train s | held-out accuracy | held-out refused | corrupted held-out refused | "
        + " | ".join(f"test: {k}" for k in test_keys)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(test_keys),
    ]
    for name in names:
        rows = [t for t in trials if t.name == name]
        seconds = sum(t.train_seconds for t in rows) / len(rows)
        val = [mean_sd([t.validation[k] for t in rows]) for k in ("forced_accuracy", "abstention", "corrupted_refused")]
        test = [mean_sd([t.test[k] for t in rows if k in t.test]) for k in test_keys]
        label = f"**{name}**" if name == chosen else name
        lines.append(f"| {label} | {len(rows)} | {seconds:.0f} | " + " | ".join(val + test) + " |")
    lines += ["", f"![Held-out accuracy against refusals of unfamiliar inputs, per configuration]({figure})", ""]
    return "\n".join(lines) + "\n"


def near_study_page(
    trials: list[NearTrial], chosen: str, default: str | None = None, replication: Replication | None = None
) -> str:
    """The near-digit study's page: every configuration on the selection sets and on every evaluation set.

    ``default`` (today's default configuration) is named where it is not ``chosen``. With ``replication``, the page
    is that of a paired comparison on fresh seeds: its verdict replaces the choice, and the last selection column
    is each row's cost less the incumbent's.
    """
    from inference.evaluation.near_study import SELECTION_SETS, criterion

    names = list(dict.fromkeys(t.name for t in trials))
    sets = list(dict.fromkeys(k for t in trials for k in t.test))

    def cell(rows: list[NearTrial], value: Any) -> str:
        values = [value(t) for t in rows]
        return mean_sd([v for v in values if v is not None])

    selection = [
        ("selection accuracy", lambda t: t.selection["digits"]["forced_accuracy"]),
        ("selection refused", lambda t: t.selection["digits"]["refused"]),
        *((f"{k}: wrong", lambda t, k=k: t.selection[k]["wrong"]) for k in SELECTION_SETS),
        ("thick pen: refused", lambda t: t.selection["thick pen"]["refused"]),
        ("criterion (mean cost)", lambda t: criterion(t.selection)),
    ]
    tests: list[tuple[str, Any]] = [
        ("MNIST forced", lambda t: t.test["MNIST"]["forced_accuracy"]),
        ("MNIST refused", lambda t: t.test["MNIST"]["refused"]),
        ("MNIST accuracy on answered", lambda t: t.test["MNIST"]["answered_accuracy"]),
    ]
    for s in sets[1:]:
        if any("right" in t.test.get(s, {}) for t in trials):
            tests += [
                (f"{s} right", lambda t, s=s: t.test[s]["right"]),
                (f"{s} wrong", lambda t, s=s: t.test[s]["wrong"]),
            ]
        tests.append((f"{s} refused", lambda t, s=s: t.test.get(s, {}).get("refused")))
    lines = [
        "# Near-digit study: reading other writers, refusing what is not a digit",
        "",
        "Written by `scripts/near_study.py`; do not edit by hand. Every configuration trains on the 55,000 training "
        "digits of `make train`; of the 5,000 held-out training digits, 2,500 calibrate the rule and 2,500 (the "
        "selection digits) choose. The selection sets and the rule were fixed before any result was read "
        "(`inference/evaluation/near_study.py`): the selection digits as they are, with a thick pen, mirrored and "
        "turned a quarter (classes 2-7 and 9, which then are no digit). Among configurations within 0.2 points of "
        "the baseline's forced accuracy that refuse at most 3% of the selection digits, the lowest mean cost over "
        "the four wins (a wrong answer costs 1, refusing a digit 1/2). Each configuration runs seed 0 first, and more "
        "seeds only where its seed 0 passed a bar written before it ran (`docs/design.md`), so the choice is among the "
        "configurations that ran the most seeds, compared over the seeds they share; taken in the order they ran, one "
        "replaces the choice so far only if its mean cost is lower by more than the choice's sd over the seeds. "
        "The last selection column is reported, not used to choose: each seed's cost less the chosen configuration's "
        "(on a replication's page, the incumbent's) on the same seed (the same split of the held-out digits, and the "
        "same networks where only the gate differs). "
        "Every figure is "
        "under the default (calibrated) rule, mean ± sd over the seeds run. The evaluation sets are reported, "
        "never used to choose. `train s` is wall-clock time with other work sharing the machine; speed is measured "
        "in the results page's Speed section.",
        "",
        *_verdict(chosen, default, replication),
        "",
        "## Selection (held-out training digits)",
        "",
    ]
    reference = replication.incumbent if replication else chosen
    groups = {name: [t for t in trials if t.name == name] for name in names}
    bold = replication.candidate if replication else chosen
    label = {name: f"**{name}**" if name == bold else name for name in names}
    reference_cost = {t.seed: criterion(t.selection) for t in groups.get(reference, [])}

    def paired(rows: list[NearTrial]) -> str:
        """The criterion less the reference configuration's on the same seed, over the seeds both ran."""
        if rows[0].name == reference:
            return "—"
        differences = [criterion(t.selection) - reference_cost[t.seed] for t in rows if t.seed in reference_cost]
        return mean_sd(differences) if differences else "—"

    lines += table(
        [
            "configuration",
            "seeds",
            "train s",
            *(k for k, _ in selection),
            f"criterion less the {'incumbent' if replication else 'chosen'}'s, same seeds",
        ],
        [
            [
                label[n],
                len(rows),
                f"{sum(t.train_seconds for t in rows) / len(rows):.0f}",
                *(cell(rows, v) for _, v in selection),
                paired(rows),
            ]
            for n, rows in groups.items()
        ],
    )
    lines += ["", "## Every evaluation set (reported, never used to choose)", ""]
    lines += table(
        ["configuration", *(k for k, _ in tests)], [[label[n], *(cell(rows, v) for _, v in tests)] for n, rows in groups.items()]
    )
    return "\n".join(lines) + "\n"


def _verdict(chosen: str, default: str | None, replication: Replication | None) -> list[str]:
    """The page's conclusion: the choice (and today's default where it differs), or a replication's verdict."""
    if replication is None:
        lines = [f"**Chosen: {chosen}.**"]
        if default is not None and default != chosen:
            lines += ["", f"**Today's default: {default}.** Not the choice on these seeds: `docs/design.md` says why."]
        return lines
    r = replication
    seeds = ", ".join(f"seed {s}: {100 * d:+.2f}" for s, d in r.differences.items())
    return [
        f"**Replication of {r.candidate}** against {r.incumbent}, on seeds that no configuration had run, each seed "
        "with the same held-out split for both (and the same networks where only the gate differs). The rule, fixed "
        "before they ran: it replicates if on every seed both "
        f"are eligible and it costs less, and the mean difference in cost is at most {100 * r.bar:+.2f} points. "
        f"Differences ({seeds} points; mean {100 * r.mean_difference:+.2f}), "
        f"{'both eligible on every seed' if r.eligible else 'not both eligible on every seed'}: "
        f"**{'it replicates' if r.replicates else 'it does not replicate'}.**"
    ]
