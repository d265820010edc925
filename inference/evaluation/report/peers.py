"""The page that sets this project beside the peer libraries."""

from __future__ import annotations

from typing import Any

from inference.evaluation.report.markdown import pct


def peers_page(rows: list[dict[str, Any]], setup: dict[str, Any], compiled: dict[str, Any] | None = None) -> str:
    """The side-by-side page: one row per contender, ratios to this project's, and the errors of those that failed."""
    ours = next((r for r in rows if r.get("key") == "ours" and "error" not in r), None)
    lines = [
        "# Beside the peer libraries",
        "",
        f"Written by `scripts/benchmark_peers.py`; do not edit by hand. Every contender trained a 784-1024-10 mean-field "
        f"BNN with a N(0, 1) prior on MNIST ({setup['epochs']} epochs, batch {setup['batch_size']}, "
        f"{setup['threads']} CPU threads, each in its own process), then sampled 100 networks per image. "
        "Refusals use the reference rule (a digit's median probability above 0.2); AUROC is that of the mutual "
        f"information against MNIST test. Run time {setup['minutes']} min"
        + (f"; every set capped at {setup['limit']:,} images (a smoke run)." if setup.get("limit") else "."),
        "",
        "| contender | s/epoch | vs ours | predict 10k x 100 (s) | vs ours | peak RSS | forced acc. | MNIST refused "
        "| notMNIST refused | Fashion refused | noise refused | AUROC notMNIST | AUROC Fashion |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            continue
        epoch_ratio, predict_ratio = (
            (f"{r['epoch_seconds'] / ours['epoch_seconds']:.2f}x", f"{r['predict_seconds'] / ours['predict_seconds']:.2f}x")
            if ours
            else ("n/a", "n/a")
        )
        refused, auc = r["refused"], r["auroc_mutual_information"]
        lines.append(
            f"| {r['name']} | {r['epoch_seconds']:.2f} | {epoch_ratio} | {r['predict_seconds']:.2f} | "
            f"{predict_ratio} | {r['peak_rss_mib']:,} MiB | {pct(r['forced_accuracy'])} | {pct(refused['MNIST'])} | "
            f"{pct(refused['notMNIST'])} | {pct(refused['FashionMNIST'])} | {pct(refused['uniform noise'])} | "
            f"{auc['notMNIST']:.3f} | {auc['FashionMNIST']:.3f} |"
        )
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", "Did not run:", ""] + [f"- `{r['key']}`: {r['error']}" for r in failed]
    if compiled and "error" not in compiled:
        lines += ["", "## torch.compile", "", compile_lines(compiled)]
    elif compiled:
        lines += ["", "## torch.compile", "", f"The trial did not run: {compiled['error']}"]
    ours_versions = setup.get("versions", {})
    versions = ", ".join(f"{name} {version}" for name, version in ours_versions.items() if version != "not installed")
    if versions:
        lines += ["", f"Versions: {versions}."]
    for r in rows:
        own = {k: v for k, v in r.get("versions", {}).items() if ours_versions.get(k) != v and v != "not installed"}
        if own and "error" not in r:
            lines.append(f"{r['name']} ran in an environment of its own: " + ", ".join(f"{k} {v}" for k, v in own.items()) + ".")
    return "\n".join(lines) + "\n"


def compile_lines(c: dict[str, Any]) -> str:
    """The torch.compile trial: eager against compiled, for the SVI step and the predictive."""
    rows = ["| what | eager | compiled | first compiled call | compiled / eager |", "|---|---|---|---|---|"]
    for key, what in (("svi", f"{c['steps']} SVI steps (batch 1024)"), ("predict", "predictive, 10,000 images x 100 networks")):
        if f"{key}_error" in c:
            rows.append(f"| {what} | {c[f'{key}_eager']:.2f} s | failed: {c[f'{key}_error']} | — | — |")
        else:
            ratio = c[f"{key}_compiled"] / c[f"{key}_eager"]
            rows.append(
                f"| {what} | {c[f'{key}_eager']:.2f} s | {c[f'{key}_compiled']:.2f} s | "
                f"{c[f'{key}_compile_first_call']:.1f} s | {ratio:.2f}x |"
            )
    return "\n".join(rows)
