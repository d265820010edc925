"""docs/contenders.md: the BNN beside the methods a user would pick instead (``scripts/benchmark_contenders.py``)."""

from __future__ import annotations

from typing import Any

from inference.evaluation.report.markdown import pct, table

BNN = "BNN (SVI, 100 networks)"


def _seconds(x: float | None) -> str:
    return "never" if x is None else f"{x:,.0f} s"


def _refused_wrong(f: dict[str, float]) -> str:
    return f"{pct(f['refused'])} / {pct(f['wrong'])}"


def contenders_page(results: dict[str, Any]) -> str:
    """The page: training and prediction times, then each set's refused / answered wrong and AUROC, then the verdict."""
    rows = results["contenders"]
    names = list(rows)
    sets = list(rows[names[0]]["sets"])
    lines = [
        "# The BNN beside the methods a user would pick instead",
        "",
        f"Written by `scripts/benchmark_contenders.py` in one run on this machine (seed {results['seed']}, "
        f"{results['epochs']} epochs each, batches of 1,024, Adam at 0.002, the same 55,000 training digits). "
        "Every contender is scored by its predictive entropy and refuses the inputs whose entropy is above that of "
        f"all but {pct(results['refusal_rate'])} of the 5,000 held-out validation digits (a one-score conformal gate). "
        "AUROC and FPR at 95% TPR: the entropy telling MNIST test from the set. Time to 98%: training seconds, "
        "the clock stopped while the forced MNIST-test accuracy is measured after each epoch (ensemble and dropout: "
        "members averaged, dropout off).",
        "",
        "## Time to quality",
        "",
        *table(
            ["contender", "epoch", "to 98% forced accuracy", "training", "final forced accuracy", "predict 10k images"],
            [
                [
                    name,
                    f"{r['epoch_seconds']:.1f} s",
                    _seconds(r["seconds_to_98"]),
                    _seconds(r["train_seconds"]),
                    pct(r["sets"]["MNIST"]["forced_accuracy"]),
                    f"{r['predict_seconds']:.1f} s ({r['networks']} networks)",
                ]
                for name, r in rows.items()
            ],
        ),
        "",
        f"## Refused / answered wrong, at {pct(results['refusal_rate'])} of validation digits refused",
        "",
        *table(
            ["set", *names],
            [[s, *(f"{pct(rows[n]['sets'][s]['refused'])} / {pct(rows[n]['sets'][s]['wrong'])}" for n in names)] for s in sets],
        ),
        "",
        "## AUROC / FPR at 95% TPR of the entropy",
        "",
        *table(
            ["set", *names],
            [
                [s, *(f"{rows[n]['sets'][s]['auroc']:.3f} / {pct(rows[n]['sets'][s]['fpr95'])}" for n in names)]
                for s in sets
                if "auroc" in rows[names[0]]["sets"][s]
            ],
        ),
    ]
    if "bnn_calibrated_rule" in results:
        rule = results["bnn_calibrated_rule"]
        lines += [
            "",
            "## The BNN's own calibrated rule (entropy and class-conditional density, alpha 0.01)",
            "",
            *table(["set", "refused", "answered wrong"], [[s, pct(f["refused"]), pct(f["wrong"])] for s, f in rule.items()]),
        ]
    lines += ["", "## Verdict", "", *verdict(rows)]
    return "\n".join(lines) + "\n"


def verdict(rows: dict[str, Any]) -> list[str]:
    """One line per set: where the BNN answers wrong least at the common refusal rate, and by how much, or who beats it."""
    if BNN not in rows:
        return ["(no BNN in this run)"]
    out = []
    others = [n for n in rows if n != BNN]
    for s, mine in rows[BNN]["sets"].items():
        best = min(others, key=lambda n: rows[n]["sets"][s]["wrong"])
        theirs = rows[best]["sets"][s]
        gap = theirs["wrong"] - mine["wrong"]
        leader = "the BNN" if gap > 0 else best
        standing = "level" if abs(gap) < 0.0005 else f"{leader} is ahead by {abs(100 * gap):.1f} points"
        out.append(
            f"- **{s}**: answered wrong {pct(mine['wrong'])} (BNN) against {pct(theirs['wrong'])} ({best}, the best "
            f"alternative): {standing}."
        )
    ablation = next((n for n in others if n.startswith("outlier exposure")), None)
    if ablation is not None:  # the same contrast inputs without the posterior
        gaps = {s: 100 * (rows[ablation]["sets"][s]["wrong"] - mine["wrong"]) for s, mine in rows[BNN]["sets"].items()}
        level = [s for s, g in gaps.items() if abs(g) <= 1.0]
        ahead = [f"{s} ({g:+.1f})" for s, g in gaps.items() if g > 1.0]
        behind = [f"{s} ({g:+.1f})" for s, g in gaps.items() if g < -1.0]
        out.append(
            f"- **Without the posterior** ({ablation}): within 1 point of the BNN's answered-wrong on {len(level)} of "
            f"{len(gaps)} sets; the BNN answers wrong less by more than a point on {', '.join(ahead) or 'none'}; "
            f"the deterministic network does on {', '.join(behind) or 'none'} (points of answered-wrong, ablation minus BNN)."
        )
    reached = [n for n in rows if rows[n]["seconds_to_98"] is not None]
    if reached:
        fastest = min(reached, key=lambda n: rows[n]["seconds_to_98"])
        out.append(f"- **Time to 98%**: {fastest} is fastest ({_seconds(rows[fastest]['seconds_to_98'])}); "
                   f"the BNN takes {_seconds(rows[BNN]['seconds_to_98'])}.")  # fmt: skip
    else:
        out.append("- **Time to 98%**: no contender reached 98% forced accuracy in this run.")
    return out
