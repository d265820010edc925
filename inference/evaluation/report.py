"""The one place that turns results into markdown, README sections and JSON.

Every page and section the scripts write comes from here: the evaluation's results page
and README table, the Speed and Reliability sections, and the OOD benchmark page.
Generated text sits between ``<!-- name:start -->`` and ``<!-- name:end -->`` markers, so
that a script rewrites its own section and leaves the rest of a page alone.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inference.evaluation.abstention import Evaluation
    from inference.evaluation.study import Trial
    from inference.ood.benchmark import OODResults

#: Sections of the results page that other scripts write: ``name: (heading, text until they run)``.
PAGE_SECTIONS = {
    "speed": ("Speed", "Not measured yet: run `python scripts/benchmark.py`."),
    "reliability": ("Reliability", "Not measured yet: run `python scripts/reliability.py`."),
    "mutation": ("Mutation testing", "Not measured yet: run `python scripts/mutation.py`."),
    "serving": ("Serving", "Not measured yet: run `python scripts/serve_check.py`."),
    "scale": ("Prediction at scale", "Not measured yet: run `python scripts/benchmark_predict.py`."),
    "processes": ("Training across processes", "Not measured yet: run `python scripts/benchmark_distributed.py`."),
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def between_markers(text: str, name: str) -> str | None:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->``, or None."""
    start, end = _markers(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def replace_between_markers(path: str | Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    path = Path(path)
    start, end = _markers(name)
    text = path.read_text()
    if start not in text or end not in text:
        warnings.warn(f"{path} has no {start} ... {end} markers; left unchanged", stacklevel=2)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses via ``to_dict``, NaN and infinities as None (strict JSON has neither)."""
    if is_dataclass(value) and hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as strict JSON (no bare ``NaN``), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(value), indent=2, allow_nan=False) + "\n")
    return path


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


# --- the abstention evaluation -------------------------------------------------------------------------


def headline_rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    """``(figure, median rule, calibrated rule, reference)`` rows of the headline table."""
    from inference.evaluation.abstention import REFERENCE

    m, calibrated = evaluation.mnist, "calibrated" in evaluation.rules

    def both(values: dict[str, float]) -> tuple[str, str]:
        return _pct(values.get("median")), _pct(values.get("calibrated")) if calibrated else "—"

    rows = [
        (
            "MNIST test: accuracy when forced",
            _pct(m.forced_accuracy),
            _pct(m.forced_accuracy),
            _pct(REFERENCE["forced_accuracy"]),
        ),
        ("MNIST test: refused", *both(m.refused), _pct(REFERENCE["refused"]["MNIST"])),
        ("MNIST test: accuracy on answered", *both(m.answered_accuracy), _pct(REFERENCE["answered_accuracy"])),
    ]
    for name, s in evaluation.sets.items():
        reference = REFERENCE["refused"].get(name)
        rows.append((f"{name} ({s.size:,}): refused", *both(s.refused), _pct(reference) if reference else "—"))
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
    lines = [
        "# Results",
        "",
        "Written by `scripts/evaluate.py` (also run at the end of `scripts/train.py`); do not edit by hand.",
        "",
        f"**Median rule** (the reference notebook's): {rule['num_samples']} networks sampled from the posterior "
        f"({rule['method']!r} sampling); a digit is a candidate when its {rule['percentile']:g}th-percentile probability "
        f"exceeds {rule['threshold']}; no candidate means abstain.",
        "",
        (
            f"**Calibrated rule**: the same candidates, behind a gate that refuses an input when its conformal p-value "
            f"(predictive entropy and VAE density, two-sided, combined by Bonferroni) is at most alpha = {rule['alpha']:g}, "
            "computed against held-out training digits"
            + (
                f"; answers below the confidence that keeps the error under {rule['max_risk']:g} are refused too"
                if rule.get("max_risk")
                else ""
            )
            + ". See [design.md](design.md) for what the guarantee does and does not promise."
            if "calibrated" in evaluation.rules
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
        "| set | size | median rule refused | calibrated rule refused | " + " | ".join(f"AUROC, {k}" for k in score_names) + " |",
        "|---|---|---|---|" + "---|" * len(score_names),
        f"| MNIST | {evaluation.mnist.size:,} | {_pct(evaluation.mnist.refused.get('median'))} | "
        f"{_pct(evaluation.mnist.refused.get('calibrated'))} |" + " — |" * len(score_names),
    ]
    for name, s in evaluation.sets.items():
        aurocs = " | ".join(f"{s.auroc[k]:.4f}" if k in s.auroc else "—" for k in score_names)
        lines.append(
            f"| {name} | {s.size:,} | {_pct(s.refused.get('median'))} | {_pct(s.refused.get('calibrated'))} | {aurocs} |"
        )
    if evaluation.ablation:
        variants = list(next(iter(evaluation.ablation.values())))
        lines += [
            "",
            f"## The gate's components (alpha = {rule['alpha']:g})",
            "",
            "Fraction of each set refused by each component of the gate alone (each at level alpha), and by their "
            "Bonferroni combination (the calibrated rule's gate). MNIST's column is the false-refusal rate.",
            "",
            "| gate | " + " | ".join(evaluation.ablation) + " |",
            "|---|" + "---|" * len(evaluation.ablation),
        ]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(_pct(row[v]) for row in evaluation.ablation.values()) + " |")
    if evaluation.guarantee is not None:
        g, summary = evaluation.guarantee, evaluation.guarantee.summary()
        lines += [
            "",
            "## The guarantee, checked",
            "",
            f"Over {len(g.false_refusal)} random re-splits of the pooled {g.calibration_size:,} held-out and "
            f"{g.test_size:,} MNIST test digits: the gate refused on average {_pct(summary['mean_false_refusal'])} of "
            f"the test digits (alpha = {g.alpha:g}; 95th percentile {_pct(summary['false_refusal_q95'])}). With the risk "
            f"gate at max_risk = {g.max_risk:g}, delta = {g.delta:g}, the error among answered digits averaged "
            f"{_pct(summary['mean_risk'])} at {_pct(summary['mean_coverage'])} coverage. The bound is on the risk over "
            f"new digits, which a re-split's test part measures with sampling noise: the realised risk exceeded max_risk in "
            f"{_pct(summary['risk_violations'])} of re-splits, and by more than two binomial standard errors in "
            f"{_pct(summary['risk_violations_beyond_noise'])} (at most about delta if the bound holds).",
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
        start, end = _markers(name)
        lines += ["", f"## {heading}", "", start, kept.get(name) or placeholder, end]
    return "\n".join(lines) + "\n"


def publish_evaluation(
    evaluation: Evaluation, json_path: str | Path, page: str | Path | None = None, readme: str | Path | None = None
) -> None:
    """Write the JSON, the results page (keeping the other scripts' sections) and the README's table."""
    write_json(evaluation, json_path)
    if page is not None:
        page = Path(page)
        page.parent.mkdir(parents=True, exist_ok=True)
        kept = {name: between_markers(page.read_text(), name) for name in PAGE_SECTIONS} if page.is_file() else {}
        page.write_text(results_page(evaluation, kept))
    if readme is not None and Path(readme).is_file():
        replace_between_markers(readme, "results", headline_table(evaluation))


# --- the speed benchmark --------------------------------------------------------------------------------


def speed_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, measured, target) rows shared by the printed table and the markdown page."""
    e, p = r["epoch"], r["predict"]
    rows = [(f"deterministic MLP epoch (Adam, batch {e['batch_size']})", f"{e['deterministic_seconds']:.2f} s", "—")]
    for name, seconds in e["svi_seconds"].items():
        ratio = e["svi_ratio"][name]
        rows.append((f"SVI epoch, {name}", f"{seconds:.2f} s ({seconds / e['steps'] * 1e3:.0f} ms/step), {ratio:.2f}x", "≤ 2x"))
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
        if "calibrated" in method:  # the median rule's work plus the gate's: compared with the median rule
            rows.append(
                (
                    "predict_with_abstain, calibrated rule (method='local')",
                    f"{seconds:.2f} s: {seconds / p['seconds']['local']:.2f}x the median rule in the same run "
                    f"(the VAE's ELBO and the p-values), {p['speedup_vs_reference'][method]:.0f}x faster than the reference loop",
                    "≤ 1.5x the median rule",
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


# --- the reliability run --------------------------------------------------------------------------------


def _shows(nodeid: str) -> str:
    name = nodeid.split("::")[-1].split("[")[0].removeprefix("test_")
    return name.replace("_", " ")


def reliability_section(faults: dict[str, str], outcomes: dict[str, str], tally: dict[tuple[str, str], int]) -> str:
    """The reliability section: what the property tests fed the API (``tally``) and each injected fault's outcome."""
    passed = sum(o == "passed" for o in outcomes.values())
    lines = [
        f"Written by `scripts/reliability.py`: {len(outcomes)} tests run, {passed} passed.",
        "",
        "Malformed and well-formed inputs generated by the property-based tests (hypothesis). Every input either gave a "
        "well-formed result (right length, probabilities in [0, 1], no NaN, candidates and answer consistent with the "
        "threshold) or raised `ValueError`/`TypeError` naming what was received:",
        "",
        "| inputs | tried | well-formed result | ValueError | TypeError |",
        "|---|---|---|---|---|",
    ]
    families = sorted({what for what, _ in tally})
    for what in families:
        counts = [tally.get((what, o), 0) for o in ("accepted", "ValueError", "TypeError")]
        lines.append(f"| {what} | {sum(counts)} | " + " | ".join(str(c) for c in counts) + " |")
    lines += ["", "Injected faults:", "", "| fault | what the test showed | outcome |", "|---|---|---|"]
    rows: dict[tuple[str, str], list[str]] = {}
    for nodeid, fault in faults.items():
        rows.setdefault((fault, _shows(nodeid)), []).append(outcomes.get(nodeid, "not run"))
    for (fault, shows), outcomes in rows.items():
        summary = outcomes[0] if len(set(outcomes)) == 1 else ", ".join(outcomes)
        lines.append(f"| {fault} | {shows} | {summary}{f' ({len(outcomes)} cases)' if len(outcomes) > 1 else ''} |")
    return "\n".join(lines)


def mutation_section(
    *,
    total: int,
    tested: int,
    seed: int,
    counts: dict[str, int],
    interval: Any | None,
    survivors: list[str],
) -> str:
    """The mutation-testing section: mutmut's verdicts on a sample, the score with its interval, the survivors."""
    from collections import Counter

    decided = counts["killed"] + counts["survived"]
    score = counts["killed"] / decided if decided else float("nan")
    sample = "every mutant" if tested == total else f"a uniform random sample of {tested:,} (seed {seed})"
    bounds = f" (95% Wilson interval {_pct(interval.low)}–{_pct(interval.high)})" if interval is not None else ""
    lines = [
        "Written by `scripts/mutation.py`: mutmut 3 on `bnn/` and the training, predictive, input and calibration "
        f"modules of `inference/`, {total:,} mutants, of which {sample} were tested. Killed {counts['killed']:,}, "
        f"survived {counts['survived']:,}, timed out {counts['timeout']:,}, covered by no test {counts['no tests']:,}, "
        f"not run {counts['not checked']:,}. **Score: {_pct(score)}**{bounds} of the mutants that ran to a verdict "
        "(killed / killed + survived). Timeouts are mutants that made a test loop past its time limit (infinite loops); "
        "which survivors are equivalent mutants, and why, is in [design.md](design.md#mutation-testing).",
    ]
    if survivors:
        per_function = Counter(name.rsplit("__mutmut_", 1)[0] for name in survivors)
        lines += ["", "| function | surviving mutants |", "|---|---|"]
        lines += [f"| `{name}` | {count} |" for name, count in per_function.most_common()]
    return "\n".join(lines)


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
    lines = [
        "Written by `scripts/benchmark_predict.py`: each case in its own process, 100 networks per image, "
        "batches of 512, answers written as CSV.",
        "",
        "| images | source | reading processes | images/s | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        source = "PNG files (read + preprocessed)" if row["case"] == "files" else "generated on the fly"
        workers = f"{row['workers']} workers" if row["workers"] else "main process"
        lines.append(
            f"| {row['images']:,} | {source} | {workers} | {row['images_per_second']:,.0f} | {row['peak_rss_mib']:,} MiB |"
        )
    return "\n".join(lines)


def processes_section(runs: list[dict[str, Any]]) -> str:
    """Training on one machine with the built-in loop and with Lightning in one and two processes."""
    lines = [
        "Written by `scripts/benchmark_distributed.py` on one 2-core machine: default model and data, global batch "
        "1024, median epoch after the first.",
        "",
        "| run | seconds per epoch | speedup over the built-in loop | final loss (nats/example) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['run']} | {r['epoch_seconds']:.2f} | {r['speedup']:.2f}x | {r['final_loss']:.4f} |" for r in runs]
    return "\n".join(lines)


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
            f"{predict_ratio} | {r['peak_rss_mib']:,} MiB | {_pct(r['forced_accuracy'])} | {_pct(refused['MNIST'])} | "
            f"{_pct(refused['notMNIST'])} | {_pct(refused['FashionMNIST'])} | {_pct(refused['uniform noise'])} | "
            f"{auc['notMNIST']:.3f} | {auc['FashionMNIST']:.3f} |"
        )
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["", "Did not run:", ""] + [f"- `{r['key']}`: {r['error']}" for r in failed]
    if compiled and "error" not in compiled:
        lines += ["", "## torch.compile", "", compile_lines(compiled)]
    elif compiled:
        lines += ["", "## torch.compile", "", f"The trial did not run: {compiled['error']}"]
    versions = ", ".join(f"{name} {version}" for name, version in setup.get("versions", {}).items())
    if versions:
        lines += ["", f"Versions: {versions}."]
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


# --- the OOD benchmark ----------------------------------------------------------------------------------


def ood_winners(results: OODResults) -> dict[str, str]:
    """The detector with the highest AUROC on each OOD set."""
    sets = next(iter(results.table.values())).keys()
    return {s: max(results.table, key=lambda name: results.table[name][s]["auroc"]) for s in sets}


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


# --- the posterior study --------------------------------------------------------------------------------


def _mean_sd(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return _pct(mean)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{100 * mean:.2f} ± {100 * sd:.2f}%"


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
        val = [_mean_sd([t.validation[k] for t in rows]) for k in ("forced_accuracy", "abstention", "corrupted_refused")]
        test = [_mean_sd([t.test[k] for t in rows if k in t.test]) for k in test_keys]
        label = f"**{name}**" if name == chosen else name
        lines.append(f"| {label} | {len(rows)} | {seconds:.0f} | " + " | ".join(val + test) + " |")
    lines += ["", f"![Held-out accuracy against refusals of unfamiliar inputs, per configuration]({figure})", ""]
    return "\n".join(lines) + "\n"
