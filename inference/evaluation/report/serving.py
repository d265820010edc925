"""The served page's section, prediction at scale, and training across processes."""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.evaluation.report.markdown import pct, table


def serving_section(results: dict[str, Any], screenshot: str | None) -> str:
    """The serving section: the load test, the soak and the burst side by side, and the browser's screenshot."""
    runs = [(name, results[name]) for name in ("load", "soak", "burst") if name in results]
    load = results["load"]
    intro = [
        f"Written by `scripts/serve_check.py`: `bnn-abstain serve` with `{results['checkpoint']}` in a process of its own on "
        f"loopback (queue of {results['queue_size']} by default). Good images are re-rendered MNIST test digits, each reply "
        "checked against the library's answer; bad bodies are empty, not an image, or truncated.",
        "",
        f"- **load test**: {load['requests']:,} requests, {load['concurrency']} in flight at once.",
    ]
    if "soak" in results:
        soak, mix = results["soak"], results["soak_mix"]
        kinds = ", ".join(f"{pct(mix[k]).replace('.0%', '%')} {k}" for k in mix)
        intro.append(
            f"- **soak**: {soak['requests']:,} requests arriving at a steady rate over {soak['seconds']:.0f} s ({kinds}: "
            f"'slow' sends half its body and stops, against a body timeout of {soak['body_timeout_s']:g} s; "
            "'gone' disconnects before its answer)."
        )
    if "burst" in results:
        burst = results["burst"]
        intro.append(f"- **burst**: {burst['requests']:,} good images sent at once, against a queue of {burst['queue_size']}.")

    def cell(run: dict[str, Any], key: str) -> str:
        value = run.get(key)
        return "—" if value is None else f"{value:,.0f} ms"

    def statuses(run: dict[str, Any]) -> str:
        return ", ".join(f"{n:,} x {status}" for status, n in run["statuses"].items())

    def queue(run: dict[str, Any], key: str) -> str:
        return f"{run['server'][key]:,}" if "server" in run else "—"

    def rss(run: dict[str, Any]) -> str:
        if "rss_mib_start" not in run:
            return "—"
        start, end = run["rss_mib_start"], run["rss_mib_end"]
        return f"{start:,.0f} → {end:,.0f} MiB ({end - start:+.0f})"

    rows = [
        ["replies", *(statuses(r) for _, r in runs)],
        ["server errors (5xx other than 503)", *(str(r["server_errors"]) for _, r in runs)],
        ["replies that differed from the library's answer", *(str(r["wrong"]) for _, r in runs)],
        ["requests with no reply in time", *(str(r.get("unanswered", 0)) for _, r in runs)],
        ["latency p50 / p95", *(f"{cell(r, 'p50_ms')} / {cell(r, 'p95_ms')}" for _, r in runs)],
        ["latency p99 / max", *(f"{cell(r, 'p99_ms')} / {cell(r, 'max_ms')}" for _, r in runs)],
        ["longest wait for a 503", *(cell(r, "busy_max_ms") for _, r in runs)],
        ["predictions made / refused as busy / dropped (client gone)",
         *(f"{queue(r, 'answered')} / {queue(r, 'rejected')} / {queue(r, 'dropped')}" for _, r in runs)],
        ["server RSS, start → end", *(rss(r) for _, r in runs)],
    ]  # fmt: skip
    lines = [*intro, "", *table(["figure", *(name for name, _ in runs)], rows)]
    lines += ["", f"Load-test throughput: {load['requests_per_second']:.1f} requests/s ({load['seconds']:.1f} s in all)."]
    if screenshot:
        lines += ["", f"![The page after drawing a 7, in Chromium]({screenshot})"]
    return "\n".join(lines)


def slope_text(slope: dict[str, float], digits: int, per: str) -> str:
    """A drift (:func:`inference.evaluation.soak.drift`) as ``+slope{per} (low to high)``, signed, to ``digits`` decimals."""
    low, high = (f"{slope[k]:+,.{digits}f}" for k in ("low", "high"))
    return f"{slope['slope']:+,.{digits}f}{per} ({low} to {high})"


def soak_section(results: dict[str, Any], figure: str | None) -> str:
    """The served page over hours: what came back, and how the server's memory, descriptors, threads and latency drifted."""
    soak = results["soak"]
    seconds = soak["seconds"]
    length = (
        f"{seconds / 3600:.1f} hours"
        if seconds >= 5400
        else f"{seconds / 60:.0f} minutes"
        if seconds >= 120
        else f"{seconds:.0f} s"
    )
    mix = ", ".join(f"{pct(share).replace('.0%', '%')} {kind}" for kind, share in results["soak_mix"].items())
    trace = soak["trace"]
    first, last = trace[0], trace[-1]
    intro = (
        f"Written by `scripts/soak_check.py`: `bnn-abstain serve` with `{results['checkpoint']}` in a process of its own "
        f"on loopback for {length}, {soak['requests']:,} requests arriving at {results['rate']:g} a second "
        f"({mix}; a body timeout of {results['body_timeout_s']:g} s), the server sampled every "
        f"{results['trace_every_s']:g} s. Drift is the Theil-Sen slope over the run's second half, after start-up's "
        "allocations have settled, with its 95% interval."
    )

    def drift(key: str, unit: str) -> str:
        slope = soak["drift"].get(key)
        return "—" if slope is None else slope_text(slope, 2, f" {unit}/hour")

    def span(key: str, unit: str = "") -> str:
        values = [row[key] for row in trace if row[key] is not None]
        return f"{first[key]:,.0f} → {last[key]:,.0f}{unit} (max {max(values):,.0f})"

    def interval_latency() -> str:
        p50, p99 = ([row[key] for row in trace if row[key] is not None] for key in ("p50_ms", "p99_ms"))
        if not p99:
            return "—"
        return f"{np.median(p50):,.0f} / {np.median(p99):,.0f} ms ({min(p99):,.0f} to {max(p99):,.0f})"

    statuses = ", ".join(f"{n:,} x {status}" for status, n in soak["statuses"].items())
    rows = [
        ["replies", statuses],
        ["server errors (5xx other than 503) / replies that differed from the library's answer / no reply in time",
         f"{soak['server_errors']} / {soak['wrong']} / {soak['unanswered']}"],
        ["latency p50 / p99 / max, every reply (a slow body's 408 comes after the body timeout)",
         f"{soak['p50_ms']:,.0f} / {soak['p99_ms']:,.0f} / {soak['max_ms']:,.0f} ms"],
        ["answers to good images, each interval's p50 / p99: median over the run (p99's range)", interval_latency()],
        ["server RSS, first → last sample", span("rss_mib", " MiB")],
        ["server RSS drift", drift("rss_mib", "MiB")],
        ["open descriptors, first → last sample", span("fds")],
        ["open descriptors drift", drift("fds", "")],
        ["threads, first → last sample", span("threads")],
        ["threads drift", drift("threads", "")],
        ["median latency drift", drift("p50_ms", "ms")],
    ]  # fmt: skip
    lines = [intro, "", *table(["figure", "value"], rows)]
    if figure:
        lines += ["", f"![The server over the soak: memory, descriptors and threads, latency]({figure})"]
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
    kinds = results.get("kinds")
    templates = (
        "every template of `inference/evaluation/drawings.py` (two ways of writing each digit; 22 letters and shapes "
        "that are no digit)"
        if kinds is None
        else f"the templates of the first {kinds} digits and the first {kinds} letters and shapes of "
        "`inference/evaluation/drawings.py` (a quick run)"
    )
    intro = (
        f"Written by `scripts/page_check.py`: {results['variants']} jittered variants of {templates}, "
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
    lines = [intro, "", *table(header, cells), "", tail]
    if "browser" in results:
        lines += ["", browser_memory(results["browser"])]
    return "\n".join(lines)


def browser_memory(browser: dict[str, Any]) -> str:
    """One paragraph: the page's own memory in Chromium over the drawings, and its drift per 100 drawings."""
    trace = browser["trace"]
    first, last = trace[0], trace[-1]

    def figure(key: str, label: str, unit: str, digits: int) -> str:
        text = f"{label} {first[key]:,.{digits}f} → {last[key]:,.{digits}f}{unit}"
        slope = browser["drift"].get(key)
        if slope is not None:
            text += ", drift " + slope_text(slope, digits, f"{unit} per 100 drawings")
        return text

    parts = [
        figure("js_heap_mib", "JavaScript heap", " MiB", 3),  # a kilobyte's resolution
        figure("dom_nodes", "DOM nodes", "", 0),
        figure("event_listeners", "event listeners", "", 0),
    ]
    return (
        f"The page's own memory over its {last['drawings']:,} drawings (Chromium's counters after a garbage collection, "
        f"read {len(trace)} times; the page driven by input events alone; drift is the Theil-Sen slope over the "
        "second half, with its 95% interval): " + "; ".join(parts) + "."
    )
