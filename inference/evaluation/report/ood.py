"""The OOD benchmark's page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference.evaluation.contenders import REFUSAL_RATE

if TYPE_CHECKING:
    from inference.evaluation.ood.benchmark import OODResults


def ood_winners(results: OODResults) -> dict[str, str]:
    """The detector with the highest AUROC on each OOD set."""
    sets = next(iter(results.table.values())).keys()
    return {s: max(results.table, key=lambda name: results.table[name][s]["auroc"]) for s in sets}


def refusal_section(results: OODResults) -> list[str]:
    """Every detector gating an answer at one refusal rate of the validation digits."""
    refusals = results.refusals
    first = next(iter(refusals.values()))
    digit_sets = [k for k, v in first.items() if "wrong" in v]
    other_sets = [k for k, v in first.items() if "wrong" not in v]
    header = [f"{k} refused / wrong" for k in digit_sets] + [f"{k} refused" for k in other_sets]
    lines = [
        "",
        f"## Refused when each detector refuses {REFUSAL_RATE:.0%} of validation digits",
        "",
        "Each detector's score gates an answer (the BNN's forced answer for the BNN's scores, the CNN's for its "
        "max-softmax, the MLP's for the rest) through the same one-score conformal gate, set on the "
        f"{results.config['held_out']:,} validation digits held out from every fit; the BNN's calibrated p-value, "
        "already a conformal p-value against those digits, refuses where it is at most the rate. Digit sets: refused "
        "and answered wrong, as shares of the set; elsewhere every answer is wrong.",
        "",
        "| detector | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for name, row in refusals.items():
        cells = [f"{row[k]['refused']:.1%} / {row[k]['wrong']:.1%}" for k in digit_sets]
        cells += [f"{row[k]['refused']:.1%}" for k in other_sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def ood_page(results: OODResults, figure_files: dict[str, str]) -> str:
    """The benchmark page: headline, tables, findings, figures."""
    table, sets = results.table, list(next(iter(results.table.values())))
    best = ood_winners(results)
    lines = [
        "# Out-of-distribution benchmark",
        "",
        "Written by `scripts/benchmark_ood.py`; do not edit by hand. Every detector is fitted on MNIST training "
        "data; scores are higher for inputs the detector believes are MNIST; MNIST test is the positive class.",
        "",
        "Sets: " + ", ".join(f"{k} ({v:,})" for k, v in results.sets.items()) + f". Run time {results.seconds / 60:.1f} min.",
        "",
        "**Best AUROC per set:** " + "; ".join(f"{s}: {best[s]} ({table[best[s]][s]['auroc']:.3f})" for s in sets) + ".",
        "",
        "## AUROC",
        "",
        "| detector | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for name, row in table.items():
        cells = [f"**{row[s]['auroc']:.3f}**" if best[s] == name else f"{row[s]['auroc']:.3f}" for s in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for metric, title in (
        ("aupr_in", "AUPR, MNIST positive"),
        ("aupr_out", "AUPR, OOD positive"),
        ("fpr95", "FPR at 95% TPR (lower is better)"),
    ):
        lines += ["", f"## {title}", "", "| detector | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
        lines += [f"| {name} | " + " | ".join(f"{row[s][metric]:.3f}" for s in sets) + " |" for name, row in table.items()]
    lines += refusal_section(results)
    lines += ["", "## Classifiers on MNIST test", "", "| classifier | accuracy | ECE (15 bins) | AURC |", "|---|---|---|---|"]
    temperature = results.findings.get("temperature")
    for name, c in results.classifiers.items():
        lines.append(f"| {name} | {c['accuracy']:.2%} | {c['ece']:.4f} | {c['aurc']:.5f} |")
    if temperature is not None:
        lines += [
            "",
            f"The fitted temperature is {temperature:.3f} (L-BFGS on the NLL of {results.config['held_out']:,} held-out images).",
        ]
    f = results.findings
    lines += ["", "## Findings", ""]
    lines.append(
        "- **FashionMNIST given > 99% confidence**: "
        + ", ".join(f"{k} {v:.1%}" for k, v in f["fashion_over_99"].items())
        + " (for the BNN: the top mean probability over 100 networks, and the top median, the rule's own score)."
    )
    lines.append(
        "- **VAE vs max-softmax on FashionMNIST** (AUROC): "
        + ", ".join(f"{k} {v:.3f}" for k, v in f["vae_vs_softmax_fashion_auroc"].items())
        + "."
    )
    if f.get("likelihood_paradox"):
        p = f["likelihood_paradox"]
        lines.append(
            f"- **Likelihood paradox**: a VAE trained on FashionMNIST separates FashionMNIST test (positive) from MNIST test "
            f"with AUROC {p['auroc_fashion_vs_mnist']:.3f} (mean ELBO {p['mean_elbo_fashion_test']:.0f} nats on FashionMNIST, "
            f"{p['mean_elbo_mnist_test']:.0f} on MNIST); below 0.5 means it prefers the digits it never saw."
        )
    if "mistakes_gmm_mann_whitney" in f:
        m = f["mistakes_gmm_mann_whitney"]
        lines.append(
            f"- **Mistakes have unusual features**: GMM log-likelihood of correctly vs wrongly classified MNIST test images "
            f"({m['mistakes']} mistakes of the MLP): Mann–Whitney U = {m['U']:.0f}, one-sided p "
            + (f"= {m['p_value']:.2g}. " if m["p_value"] > 0 else "below 1e-300 (it underflows to 0). ")
            + "AUROC of telling the MLP's right answers from its mistakes: "
            + ", ".join(f"{k} {v:.3f}" for k, v in f["mistake_detection_auroc_mlp"].items())
            + "."
        )
    if "mistake_detection_auroc_bnn" in f:
        lines.append(
            "- AUROC of telling the BNN's right answers from its mistakes: "
            + ", ".join(f"{k} {v:.3f}" for k, v in f["mistake_detection_auroc_bnn"].items())
            + "."
        )
    lines += ["", "## Adversarial inputs (against the deterministic MLP)", ""]
    names = list(next(iter(f["adversarial"].values()))["detection_auroc"])
    lines += [
        "| attack | MLP accuracy | BNN accuracy | BNN abstains | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for key, a in f["adversarial"].items():
        aurocs = " | ".join(f"{a['detection_auroc'][n]:.3f}" for n in names)
        lines.append(
            f"| {key} | {a['mlp_accuracy']:.1%} | {a['bnn_forced_accuracy']:.1%} | {a['bnn_abstention']:.1%} | {aurocs} |"
        )
    lines.append("")
    lines.append("Detector columns: AUROC of telling clean MNIST test images (positive) from their adversarial versions.")
    for file, caption in figure_files.items():
        lines += ["", f"![{caption}]({file})", "", f"*{caption}.*"]
    cfg = results.config
    lines += [
        "",
        "## How it was made",
        "",
        f"- The GMM has {cfg['gmm_components']} diagonal components fitted by EM on the 1024 hidden features of 20,000 "
        "training images: MNIST has 10 classes with a few writing styles each, so a few components per class; the "
        "paper's 100-1000 components were for CIFAR's 50,000 more varied images, and EM's cost grows with the count.",
        f"- Configuration: `{cfg}`.",
        "- Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results.timings.items()) + ".",
    ]
    return "\n".join(lines) + "\n"
