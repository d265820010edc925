"""The abstention evaluation's outputs: the results page, the README's table and the table on the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from inference.evaluation.report.markdown import between_markers, markers, pct, replace_between_markers, write_json

if TYPE_CHECKING:
    from inference.evaluation.abstention import Evaluation

#: Sections of the results page that other scripts write: ``name: (heading, text until they run)``.
PAGE_SECTIONS = {
    "speed": ("Speed", "Not measured yet: run `python scripts/benchmark.py`."),
    "reliability": ("Reliability", "Not measured yet: run `python scripts/reliability.py`."),
    "mutation": ("Mutation testing", "Not measured yet: run `python scripts/mutation.py`."),
    "serving": ("Serving", "Not measured yet: run `python scripts/serve_check.py`."),
    "soak": ("Serving over hours", "Not measured yet: run `python scripts/soak_check.py`."),
    "drawn": ("Drawn on the page", "Not measured yet: run `python scripts/page_check.py`."),
    "scale": ("Prediction at scale", "Not measured yet: run `python scripts/benchmark_predict.py`."),
    "processes": ("Training across processes", "Not measured yet: run `python scripts/benchmark_distributed.py`."),
}


def headline_rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    """``(figure, median rule, calibrated rule, reference)`` rows of the headline table."""
    from inference.evaluation.abstention import REFERENCE

    m, calibrated = evaluation.mnist, "calibrated" in evaluation.modes
    modes = ["median", "calibrated"] if calibrated else ["median"]

    def both(values: dict[str, float]) -> tuple[str, str]:
        return pct(values.get("median")), pct(values.get("calibrated")) if calibrated else "—"

    rows = [
        (
            "MNIST test: accuracy when forced",
            pct(m.forced_accuracy),
            pct(m.forced_accuracy),
            pct(REFERENCE["forced_accuracy"]),
        ),
        ("MNIST test: refused", *both(m.refused), pct(REFERENCE["refused"]["MNIST"])),
        ("MNIST test: accuracy on answered", *both(m.answered_accuracy), pct(REFERENCE["answered_accuracy"])),
    ]
    for name, s in evaluation.sets.items():
        if s.digits:
            cells = [f"{pct(s.read_right.get(k))} / {pct(s.answered_wrong.get(k))} / {pct(s.refused.get(k))}" for k in modes]
            rows.append((f"{name} digits ({s.size:,}): read right / wrong / refused", *cells, *["—"] * (3 - len(cells))))
            continue
        reference = REFERENCE["refused"].get(name)
        rows.append((f"{name} ({s.size:,}): refused", *both(s.refused), pct(reference) if reference else "—"))
    return rows


def headline_table(evaluation: Evaluation) -> str:
    lines = ["| figure | median rule | calibrated rule | reference notebook |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in headline_rows(evaluation)]
    return "\n".join(lines)


def print_evaluation(evaluation: Evaluation) -> None:
    """The headline table on the terminal, with what was missing or skipped."""
    rows = [("figure", "median", "calibrated", "reference"), *headline_rows(evaluation)]
    width = max(len(r[0]) for r in rows)
    for a, b, c, d in rows:
        print(f"{a:<{width}}  {b:>8}  {c:>10}  {d:>9}")
    for name, why in evaluation.missing.items():
        print(f"(missing: {name}: {why})")
    for name, s in evaluation.sets.items():
        if s.skipped_files:
            print(f"({name}: skipped {s.skipped_files} unreadable file(s))")


def results_page(evaluation: Evaluation, kept: dict[str, str | None] | None = None) -> str:
    """The markdown results page; ``kept`` holds the other scripts' sections from the previous page."""
    kept = kept or {}
    rule, train = evaluation.rule, evaluation.training or {}
    calibration = train.get("calibration") or {}  # a state saved before an option lacks its key
    conditional = calibration.get("class_density")
    density = "the VAE's density of the input under the digit it would answer" if conditional else "VAE density"
    combined = "Fisher's statistic, calibrated" if calibration.get("fisher_combination") else "Bonferroni"
    if calibration.get("class_doubt"):
        density += ", two-sided, and how much better that digit explains it than the others do (the class doubt)"
    else:
        density += ", two-sided"
    lines = [
        "# Results",
        "",
        "Written by `make train` (`bnn-abstain train --results docs`, or `evaluate --results docs`); do not edit by hand.",
        "",
        f"**Median rule** (the reference notebook's): {rule['num_samples']} networks sampled from the posterior "
        f"({rule['method']!r} sampling); a digit is a candidate when its {rule['percentile']:g}th-percentile probability "
        f"exceeds {rule['threshold']}; no candidate means abstain.",
        "",
        (
            f"**Calibrated rule**: the same candidates, behind a gate that refuses an input when its conformal p-value "
            f"(predictive entropy and {density}, combined by {combined}) "
            f"is at most alpha = {rule['alpha']:g}, "
            "computed against held-out training digits"
            + (
                f"; answers below the confidence that keeps the error under {rule['max_risk']:g} are refused too"
                if rule.get("max_risk")
                else ""
            )
            + ". See [design.md](design.md) for what the guarantee does and does not promise."
            if "calibrated" in evaluation.modes
            else "**Calibrated rule**: not available, this checkpoint carries no calibration."
        ),
        "",
        headline_table(evaluation),
        "",
        "## Per set",
        "",
    ]
    score_names = list(dict.fromkeys(k for s in evaluation.sets.values() for k in s.auroc))
    lines += [
        "Answered wrong: answers that are not the input's digit (every answer, on a set of non-digits). "
        "AUROC: how well each score tells the set from MNIST test (1 is perfect, 0.5 is chance).",
        "",
        "| set | size | median rule refused | calibrated rule refused | median rule answered wrong | "
        "calibrated rule answered wrong | " + " | ".join(f"AUROC, {k}" for k in score_names) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(score_names),
        f"| MNIST | {evaluation.mnist.size:,} | {pct(evaluation.mnist.refused.get('median'))} | "
        f"{pct(evaluation.mnist.refused.get('calibrated'))} | "
        + " | ".join(pct(1 - a - r) for a, r in _mnist_wrong(evaluation))
        + " |"
        + " — |" * len(score_names),
    ]
    for name, s in evaluation.sets.items():
        aurocs = " | ".join(f"{s.auroc[k]:.4f}" if k in s.auroc else "—" for k in score_names)
        lines.append(
            f"| {name} | {s.size:,} | {pct(s.refused.get('median'))} | {pct(s.refused.get('calibrated'))} | "
            f"{pct(s.answered_wrong.get('median'))} | {pct(s.answered_wrong.get('calibrated'))} | {aurocs} |"
        )
    if evaluation.ablation:
        variants = list(next(iter(evaluation.ablation.values())))
        lines += [
            "",
            f"## The gate's components (alpha = {rule['alpha']:g})",
            "",
            "Fraction of each set refused by each component of the gate alone (each at level alpha), and by their "
            f"combination ({combined}: the calibrated rule's gate). MNIST's column is the false-refusal rate.",
            "",
            "| gate | " + " | ".join(evaluation.ablation) + " |",
            "|---|" + "---|" * len(evaluation.ablation),
        ]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(pct(row[v]) for row in evaluation.ablation.values()) + " |")
    if evaluation.guarantee is not None:
        g, summary = evaluation.guarantee, evaluation.guarantee.summary()
        lines += [
            "",
            "## The guarantee, checked",
            "",
            f"Over {len(g.false_refusal)} random re-splits of the pooled {g.calibration_size:,} held-out and "
            f"{g.test_size:,} MNIST test digits: the gate refused on average {pct(summary['mean_false_refusal'])} of "
            f"the test digits (alpha = {g.alpha:g}; 95th percentile {pct(summary['false_refusal_q95'])}). With the risk "
            f"gate at max_risk = {g.max_risk:g}, delta = {g.delta:g}, the error among answered digits averaged "
            f"{pct(summary['mean_risk'])} at {pct(summary['mean_coverage'])} coverage. The bound is on the risk over "
            f"new digits, which a re-split's test part measures with sampling noise: the realised risk exceeded max_risk in "
            f"{pct(summary['risk_violations'])} of re-splits, and by more than two binomial standard errors in "
            f"{pct(summary['risk_violations_beyond_noise'])} (at most about delta if the bound holds).",
        ]
    for file, caption in evaluation.figures.items():
        lines += ["", f"![{caption}]({file})", "", f"*{caption}.*"]
    lines += ["", "## How it was made", ""]
    if train:
        lines.append(
            f"- Training: {train.get('epochs')} epochs of SVI (mean-field ELBO), "
            f"{train.get('seconds', float('nan')):.0f} s wall-clock; configuration: `{json.dumps(train.get('config', {}))}`."
        )
        if train.get("calibration"):
            lines.append(f"- Calibration: `{json.dumps(train['calibration'])}`.")
    lines += [
        f"- Model: `{json.dumps(evaluation.model)}`.",
        f"- Evaluation: {evaluation.seconds:.0f} s on {evaluation.machine['device']} "
        f"({evaluation.machine['threads']} threads, {evaluation.machine['platform']}).",
    ]
    for name, why in evaluation.missing.items():
        lines.append(f"- Missing: {name}: {why}")
    for name, s in evaluation.sets.items():
        if s.skipped_files:
            lines.append(f"- {name}: skipped {s.skipped_files} unreadable file(s).")
    for name, (heading, placeholder) in PAGE_SECTIONS.items():
        start, end = markers(name)
        lines += ["", f"## {heading}", "", start, kept.get(name) or placeholder, end]
    return "\n".join(lines) + "\n"


def _mnist_wrong(evaluation: Evaluation) -> list[tuple[float, float]]:
    """Per mode (median, calibrated): MNIST's (read right, refused), whose complement is answered wrong."""
    m = evaluation.mnist
    out = []
    for mode in ("median", "calibrated"):
        refused = m.refused.get(mode, float("nan"))
        out.append((m.answered_accuracy.get(mode, float("nan")) * (1 - refused), refused))
    return out


def publish_evaluation(evaluation: Evaluation, json_path: str | Path, page: str | Path | None = None) -> None:
    """Write the JSON and the results page (keeping the other scripts' sections)."""
    write_json(evaluation, json_path)
    if page is not None:
        page = Path(page)
        page.parent.mkdir(parents=True, exist_ok=True)
        kept = {name: between_markers(page.read_text(), name) for name in PAGE_SECTIONS} if page.is_file() else {}
        page.write_text(results_page(evaluation, kept))


def publish_readme_table(evaluation: Evaluation, readme: str | Path) -> None:
    """Replace the results table between the README's ``results`` markers; ``FileNotFoundError`` if there is no README."""
    if not Path(readme).is_file():
        raise FileNotFoundError(f"no README at {readme} to update")
    replace_between_markers(readme, "results", headline_table(evaluation))
