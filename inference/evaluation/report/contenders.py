"""docs/contenders.md: the BNN beside the methods a user would pick instead (``scripts/benchmark_contenders.py``)."""

from __future__ import annotations

from typing import Any

from inference.evaluation.report.markdown import mean_and_sd, mean_sd, pct, table

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
        f"{results['epochs']} epochs each, batches of 1,024, Adam at 0.002, "
        f"the same {results.get('train_images', 55_000):,} training digits). "
        "Every contender is scored by its predictive entropy and refuses the inputs whose entropy is above that of "
        f"all but {pct(results['refusal_rate'])} of the {results.get('held_out', 5000):,} held-out validation digits "
        "(a one-score conformal gate). "
        "AUROC and FPR at 95% TPR: the entropy telling MNIST test from the set. Time to 98%: training seconds, "
        "the clock stopped while the forced MNIST-test accuracy is measured after each epoch (ensemble and dropout: "
        "members averaged, dropout off)."
        + (
            f" The banks of written characters that the BNN and the outlier-exposure ablation draw contrast inputs from "
            f"were made once, before any clock started, as the datasets were loaded ({results['glyph_bank_seconds']:.1f} s)."
            if "glyph_bank_seconds" in results
            else ""
        ),
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
            [[s, *(_refused_wrong(rows[n]["sets"][s]) for n in names)] for s in sets],
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
            _rule_heading(results),
            "",
            *table(["set", "refused", "answered wrong"], [[s, pct(f["refused"]), pct(f["wrong"])] for s, f in rule.items()]),
        ]
    gated = _gated([results])
    if gated:
        lines += [
            "",
            f"## Refused / answered wrong behind the calibrated rule's gate (alpha {_rule_alpha(results):g})",
            "",
            gated_method([results]),
            "",
            *table(["set", *names], [[s, *(_refused_wrong(rows[n]["gated"][s]) for n in names)] for s in sets]),
        ]
    lines += ["", "## Verdict", "", *verdict([results])]
    if gated:
        lines += ["", "## Verdict behind the calibrated rule's gate", "", *verdict([results], "gated")]
    return "\n".join(lines) + "\n"


def gated_method(runs: list[dict[str, Any]]) -> str:
    """How every contender was put behind the BNN's gate (``inference.evaluation.contenders.gated_figures``), by the
    scores the runs' gate combined (runs before the class doubt recorded none: the entropy and the density)."""
    components = {tuple(r.get("gate_components", ("entropy", "density"))) for r in runs}
    if len(components) > 1:
        raise ValueError(f"the runs' gates combined different scores ({sorted(components)}): they do not aggregate")
    doubt = "class_doubt" in next(iter(components))
    scores = (
        "predictive entropy, the density of the class it answers and how much better that class explains the input "
        "than the others do (the class doubt)"
        if doubt
        else "predictive entropy and the density of the class it answers"
    )
    return (
        f"Each contender's {scores}, under the BNN's calibration's class-conditional VAE (one model for all), each a "
        "conformal p-value among the validation digits' own, combined by Fisher's statistic and ranked among theirs, "
        "as the BNN's calibrated rule does; refused where it is at most alpha, else answered with the contender's most "
        "probable digit."
    )


def _gated(runs: list[dict[str, Any]]) -> bool:
    """Whether every run put every contender behind the calibrated gate (runs before 12-05 did not)."""
    return all("gated" in row for r in runs for row in r["contenders"].values())


def _rule_alpha(results: dict[str, Any]) -> float:
    # Runs written before the JSON recorded the gate's level used the default of the time, 0.01.
    return results.get("bnn_rule_alpha", 0.01)


def _rule_heading(results: dict[str, Any]) -> str:
    doubt = "class_doubt" in results.get("gate_components", ())
    scores = "entropy, class-conditional density and class doubt" if doubt else "entropy and class-conditional density"
    return f"## The BNN's own calibrated rule ({scores}, alpha {_rule_alpha(results):g})"


def _seconds_over_seeds(values: list[float | None]) -> str:
    if len(values) == 1:
        return _seconds(values[0])
    reached = [v for v in values if v is not None]
    if len(reached) < len(values):
        return f"never in {len(values) - len(reached)} of {len(values)} seeds"
    mean, sd = mean_and_sd(reached)
    return f"{mean:,.1f} ± {sd:,.1f} s"


def contenders_seeds_page(runs: list[dict[str, Any]]) -> str:
    """Several seeds' runs of ``scripts/benchmark_contenders.py`` on one page: every figure as mean ± sd over the
    seeds, and the verdict with how many seeds each lead held in."""
    if len({(r["epochs"], r["refusal_rate"], _rule_alpha(r), tuple(r["contenders"])) for r in runs}) != 1:
        raise ValueError("the runs differ in epochs, refusal rate, the BNN's rule or contenders: they do not aggregate")
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the runs repeat a seed ({seeds}): each seed counts once")
    names = list(runs[0]["contenders"])
    sets = list(runs[0]["contenders"][names[0]]["sets"])

    def over(name: str, key: str) -> list[Any]:
        return [r["contenders"][name][key] for r in runs]

    def over_set(name: str, set_name: str, key: str, rule: str = "sets") -> list[float]:
        return [r["contenders"][name][rule][set_name][key] for r in runs]

    def by_set(key: str, rule: str = "sets") -> list[list[str]]:
        """One row per set: every contender's ``key`` (refused or wrong) under ``rule``, mean ± sd over the seeds."""
        return [[s, *(mean_sd(over_set(n, s, key, rule)) for n in names)] for s in sets]

    lines = [
        "# The contenders over seeds",
        "",
        f"The runs of `scripts/benchmark_contenders.py` for seeds {', '.join(map(str, seeds))} "
        f"({runs[0]['epochs']} epochs each; each seed its own split, networks and run), aggregated by "
        "`scripts/benchmark_contenders.py --aggregate`. Every figure is the mean ± sd over the seeds; each seed's own "
        "page has the method. Refused / answered wrong at "
        f"{pct(runs[0]['refusal_rate'])} of that seed's validation digits refused.",
        "",
        "## Time to quality",
        "",
        *table(
            ["contender", "epoch", "to 98% forced accuracy", "training", "final forced accuracy", "predict 10k images"],
            [
                [
                    name,
                    _seconds_over_seeds(over(name, "epoch_seconds")),
                    _seconds_over_seeds(over(name, "seconds_to_98")),
                    _seconds_over_seeds(over(name, "train_seconds")),
                    mean_sd(over_set(name, "MNIST", "forced_accuracy")),
                    _seconds_over_seeds(over(name, "predict_seconds")),
                ]
                for name in names
            ],
        ),
        "",
        "## Refused",
        "",
        *table(["set", *names], by_set("refused")),
        "",
        "## Answered wrong",
        "",
        *table(["set", *names], by_set("wrong")),
        "",
        "## AUROC of the entropy",
        "",
        *table(
            ["set", *names],
            [
                [s, *("{:.3f} ± {:.3f}".format(*mean_and_sd(over_set(n, s, "auroc"))) for n in names)]
                for s in sets
                if "auroc" in runs[0]["contenders"][names[0]]["sets"][s]
            ],
        ),
    ]
    if all("bnn_calibrated_rule" in r for r in runs):
        rule = [r["bnn_calibrated_rule"] for r in runs]
        lines += [
            "",
            _rule_heading(runs[0]),
            "",
            *table(
                ["set", "refused", "answered wrong"],
                [[s, mean_sd([r[s]["refused"] for r in rule]), mean_sd([r[s]["wrong"] for r in rule])] for s in rule[0]],
            ),
        ]
    gated = _gated(runs)
    if gated:
        lines += [
            "",
            f"## Behind the calibrated rule's gate (alpha {_rule_alpha(runs[0]):g})",
            "",
            gated_method(runs),
            "",
            "Refused:",
            "",
            *table(["set", *names], by_set("refused", "gated")),
            "",
            "Answered wrong:",
            "",
            *table(["set", *names], by_set("wrong", "gated")),
        ]
    lines += ["", "## Verdict", "", *verdict(runs)]
    if gated:
        lines += ["", "## Verdict behind the calibrated rule's gate", "", *verdict(runs, "gated")]
    return "\n".join(lines) + "\n"


def verdict(runs: list[dict[str, Any]], rule: str = "sets") -> list[str]:
    """The verdict of one run, or of several seeds on their means.

    Per set: the BNN's answered-wrong at the common refusal rate (``rule`` ``"sets"``: the one-score gate;
    ``"gated"``: the calibrated rule's gate, for every contender) against the alternative's with the lowest, and who
    is ahead by how much (over seeds: in how many the lead held). Then the deterministic ablation's gap per set, and
    (once, with the one-score gate) the fastest to 98%.
    """
    contenders = runs[0]["contenders"]
    others = [name for name in contenders if name != BNN]
    if BNN not in contenders or not others:
        return ["(no BNN in this run)" if BNN not in contenders else "(no alternative in this run)"]
    n = len(runs)
    on_the_mean = " on the mean" if n > 1 else ""

    def wrong(name: str, set_name: str) -> list[float]:
        return [r["contenders"][name][rule][set_name]["wrong"] for r in runs]

    out = []
    for s in contenders[BNN][rule]:
        mine = wrong(BNN, s)
        best = min(others, key=lambda name: sum(wrong(name, s)))
        theirs = wrong(best, s)
        gap = (sum(theirs) - sum(mine)) / n
        leader = "the BNN" if gap > 0 else best
        held = sum((t - m) * gap > 0 for m, t in zip(mine, theirs, strict=True))
        standing = "level" if abs(gap) < 0.0005 else f"{leader} is ahead by {abs(100 * gap):.1f} points"
        if n > 1 and standing != "level":
            standing += f", in {held} of {n} seeds"
        out.append(
            f"- **{s}**: answered wrong {mean_sd(mine)} (BNN) against {mean_sd(theirs)} ({best}, the best "
            f"alternative): {standing}."
        )
    ablation = next((name for name in others if name.startswith("outlier exposure")), None)
    if ablation is not None:  # the same contrast inputs without the posterior
        gaps = {s: mean_and_sd([100 * (t - m) for m, t in zip(wrong(BNN, s), wrong(ablation, s), strict=True)])
                for s in contenders[BNN][rule]}  # fmt: skip

        def points(s: str) -> str:
            mean, sd = gaps[s]
            return f"{s} ({mean:+.1f}" + (f" ± {sd:.1f})" if n > 1 else ")")

        level = [s for s, (g, _) in gaps.items() if abs(g) <= 1.0]
        ahead = [points(s) for s, (g, _) in gaps.items() if g > 1.0]
        behind = [points(s) for s, (g, _) in gaps.items() if g < -1.0]
        out.append(
            f"- **Without the posterior** ({ablation}): within 1 point of the BNN's answered-wrong{on_the_mean} on "
            f"{len(level)} of {len(gaps)} sets; the BNN answers wrong less by more than a point on "
            f"{', '.join(ahead) or 'none'}; the deterministic network does on {', '.join(behind) or 'none'} "
            f"(points of answered-wrong, ablation minus BNN{', mean ± sd over the seeds' if n > 1 else ''})."
        )
    if rule != "sets":
        return out
    to_98 = {name: [r["contenders"][name]["seconds_to_98"] for r in runs] for name in contenders}
    reached = {name: sum(v) / n for name, v in to_98.items() if None not in v}
    if reached:
        fastest = min(reached, key=reached.__getitem__)
        out.append(
            f"- **Time to 98%**: {fastest} is fastest{on_the_mean} ({_seconds_over_seeds(to_98[fastest])}); "
            f"the BNN takes {_seconds_over_seeds(to_98[BNN])}."
        )
    else:
        where = "in every seed" if n > 1 else "in this run"
        out.append(f"- **Time to 98%**: no contender reached 98% forced accuracy {where}.")
    return out
