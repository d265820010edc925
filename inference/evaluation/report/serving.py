"""The served page's section, prediction at scale, and training across processes."""

from __future__ import annotations

from typing import Any

from inference.evaluation.report.markdown import pct, table


def serving_section(load: dict[str, Any], checkpoint: str, screenshot: str | None) -> str:
    """The serving section: the load test's statuses and latencies, and the browser's screenshot."""
    statuses = ", ".join(f"{n} x {status}" for status, n in load["statuses"].items())
    lines = [
        f"Written by `scripts/serve_check.py`: `bnn-abstain serve` with `{checkpoint}` on loopback, "
        f"{load['requests']} requests at concurrency {load['concurrency']}, cycling through good images "
        "(re-rendered MNIST test digits) and bad bodies (empty, not an image, truncated).",
        "",
        "| figure | measured |",
        "|---|---|",
        f"| replies | {statuses} |",
        f"| server errors (5xx) | {load['server_errors']} |",
        f"| replies that differed from the library's answer | {load['wrong']} |",
        f"| latency p50 / p95 | {load['p50_ms']:.0f} ms / {load['p95_ms']:.0f} ms |",
        f"| throughput | {load['requests_per_second']:.1f} requests/s ({load['seconds']:.1f} s in all) |",
    ]
    if screenshot:
        lines += ["", f"![The page after drawing a 7, in Chromium]({screenshot})"]
    return "\n".join(lines)


def scale_section(rows: list[dict[str, Any]]) -> str:
    """Prediction over large collections: images/s and peak RSS per case."""
    cells = [
        [
            f"{row['images']:,}",
            "PNG files (read + preprocessed)" if row["case"] == "files" else "generated on the fly",
            f"{row['workers']} workers" if row["workers"] else "main process",
            f"{row['images_per_second']:,.0f}",
            f"{row['peak_rss_mib']:,} MiB",
        ]
        for row in rows
    ]
    intro = (
        "Written by `scripts/benchmark_predict.py`: each case in its own process, 100 networks per image, "
        "batches of 512, answers written as CSV."
    )
    return "\n".join([intro, "", *table(["images", "source", "reading processes", "images/s", "peak RSS"], cells)])


def processes_section(runs: list[dict[str, Any]]) -> str:
    """Training on one machine with the built-in loop and with Lightning in one and two processes."""
    intro = (
        "Written by `scripts/benchmark_distributed.py` on one 2-core machine: default model and data, global batch "
        "1024, median epoch after the first."
    )
    header = ["run", "seconds per epoch", "speedup over the built-in loop", "final loss (nats/example)"]
    cells = [[r["run"], f"{r['epoch_seconds']:.2f}", f"{r['speedup']:.2f}x", f"{r['final_loss']:.4f}"] for r in runs]
    return "\n".join([intro, "", *table(header, cells)])


def drawn_section(results: dict[str, Any]) -> str:
    """What the page answered to digits and to letters and shapes drawn with the mouse in Chromium."""
    intro = (
        f"Written by `scripts/page_check.py`: {results['variants']} jittered variants of every template of "
        "`inference/evaluation/drawings.py` (two ways of writing each digit; 22 letters and shapes that are no digit), "
        "drawn with the mouse on the served page in Chromium; the page's decision after the last stroke. "
        '"In Python": the same drawings rendered with the page\'s pen and given to `predict_with_abstain`.'
    )
    header = ["drawn", "where", "drawings", "read right", "answered wrong", "refused"]
    cells = []
    for kind in ("digits", "not digits"):
        for where, label in (("page", "page, Chromium"), ("python", "in Python")):
            r = results[f"{kind}, {where}"]
            cells.append([kind, label, r["n"], pct(r["right"]) if kind == "digits" else "—", pct(r["wrong"]), pct(r["refused"])])
    answered = results.get("answered kinds") or {}
    tail = "Non-digits the page answered, by kind: " + (", ".join(f"{k} ({n})" for k, n in answered.items()) or "none") + "."
    return "\n".join([intro, "", *table(header, cells), "", tail])
