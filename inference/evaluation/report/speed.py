"""The speed benchmark's section of the results page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.evaluation.report.markdown import replace_between_markers, write_json
from inference.evaluation.speed import AS_FILED_KEY


def speed_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, measured, target) rows shared by the printed table and the markdown page."""
    e, p = r["epoch"], r["predict"]
    rows = [(f"deterministic MLP epoch (Adam, batch {e['batch_size']})", f"{e['deterministic_seconds']:.2f} s", "—")]
    for name, seconds in e["svi_seconds"].items():
        ratio = e["svi_ratio"][name]
        rows.append((f"SVI epoch, {name}", f"{seconds:.2f} s ({seconds / e['steps'] * 1e3:.0f} ms/step), {ratio:.2f}x", "≤ 2.5x"))
    rows.append(
        (
            "SVI epoch, plain Pyro (AutoNormal, TraceMeanField_ELBO, batch 128)",
            f"{e['plain_pyro_batch128_seconds']:.2f} s, {e['plain_pyro_ratio']:.2f}x the deterministic epoch at batch 128 "
            f"({e['deterministic_batch128_seconds']:.2f} s)",
            "—",
        )
    )
    rows.append(
        (
            f"floor for sampled networks: bare matrix products, {p['images']:,} images x 100 networks",
            f"{p['matmul_floor_seconds']:.2f} s",
            "—",
        )
    )
    rows.append(
        (
            "floor for local reparameterisation: its bare tensor operations, same work",
            f"{p['local_floor_seconds']:.2f} s",
            "—",
        )
    )
    for method, seconds in p["seconds"].items():
        if method == AS_FILED_KEY:
            continue  # the baseline of the calibrated rule's row
        if "calibrated" in method:  # the median rule's work plus the gate's
            as_filed = p["seconds"].get(AS_FILED_KEY)
            versus = (
                f"{seconds / as_filed:.2f}x the calibrated rule as issue 21 was filed (unconditional density 400 units "
                f"wide, chunks of 163 inputs: {as_filed:.2f} s), "
                if as_filed
                else ""
            )
            rows.append(
                (
                    "predict_with_abstain, calibrated rule (method='local')",
                    f"{seconds:.2f} s: {versus}{seconds / p['seconds']['local']:.2f}x the median rule "
                    f"(the VAE's ELBO and the p-values), {p['speedup_vs_reference'][method]:.0f}x faster than the "
                    "reference loop; all in the same run",
                    "≤ 1.5x as filed" if as_filed else "≤ 1.5x the median rule",
                )
            )
            continue
        rows.append(
            (
                f"predict_with_abstain, median rule, method={method!r}",
                f"{seconds:.2f} s: {p['floor_ratio'][method]:.2f}x the matrix-product floor, "
                f"{p['own_floor_ratio'][method]:.2f}x its own floor, "
                f"{p['speedup_vs_reference'][method]:.0f}x faster than the reference loop",
                "≤ 1.3x floor, ≥ 15x",
            )
        )
    rows.append(("reference loop (100 guide calls per 128 images), scaled", f"{p['reference_loop_seconds']:.0f} s", "—"))
    for m in r["memory"]:
        grown = (m["peak_after"] - m["rss_before"]) / 2**20
        rows.append(
            (f"peak RSS predicting {m['inputs']:,} inputs", f"{m['peak_after'] / 2**20:.0f} MiB (+{grown:.0f} MiB)", "bounded")
        )
    if "full_train" in r:
        f = r["full_train"]
        rows.append(
            (
                "`make train` (training, calibration and evaluation)",
                f"{f['seconds'] / 60:.1f} min ({f['train_seconds']:.0f} s + {f['evaluate_seconds']:.0f} s), "
                f"forced accuracy {f['forced_accuracy']:.1%}",
                "< 5 min, ≥ 98%",
            )
        )
    return rows


def speed_section(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Measured by `scripts/benchmark.py` on {m['device']} ({m['name']}, {m['threads']} threads, torch {m['torch']}); "
        f"medians of {r['repeats']} repetitions. Epochs over {r['train_images']:,} MNIST images.",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in speed_rows(r)]
    return "\n".join(lines)


def publish_speed(results: dict[str, Any], json_path: str | Path, pages: list[str | Path]) -> None:
    """Write the benchmark's JSON and its section into every page that has the speed markers."""
    write_json(results, json_path)
    for page in pages:
        if Path(page).is_file():
            replace_between_markers(page, "speed", speed_section(results))
