"""Figures of the networks' doubt. Every function returns a :class:`matplotlib.figure.Figure`.

The notebooks show them; the evaluation saves the dataset-level ones as PNGs next to the results page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure  # not pyplot: no global state, any backend
from torch import Tensor

from bnn import MeanFieldGuide
from inference.evaluation.guarantee import GuaranteeCheck
from inference.predictive import DEFAULT_RULE

IN_COLOUR, OUT_COLOUR, PASS_COLOUR = "tab:blue", "tab:orange", "tab:green"


def _numpy(x: Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def network_histograms(
    image: Tensor,
    samples: Tensor,
    threshold: float = DEFAULT_RULE.threshold,
    percentile: float = 50.0,
    title: str | None = None,
) -> Figure:
    """The input next to ten histograms of the per-network log-probabilities, one per digit.

    Parameters
    ----------
    image
        ``(784,)`` or ``(28, 28)`` pixels in [0, 1].
    samples
        ``(S,)`` networks' probabilities for this input, shape ``(S, 10)``.

    The vertical line marks each digit's percentile probability (the median by
    default); digits whose percentile clears ``threshold`` are drawn in green.
    """
    probs = _numpy(samples).astype(np.float64)
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    level = np.percentile(probs, percentile, axis=0)
    fig = Figure(figsize=(16, 2.0), layout="constrained")
    axes = fig.subplots(1, probs.shape[1] + 1, gridspec_kw={"width_ratios": [1.3] + [1] * probs.shape[1]})
    axes[0].imshow(_numpy(image).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
    axes[0].set_axis_off()
    axes[0].set_title(title or "input", fontsize=9)
    bins = np.linspace(min(-30.0, logp.min()), 0.0, 31)
    for digit, ax in enumerate(axes[1:]):
        passed = level[digit] > threshold
        ax.hist(logp[:, digit], bins=bins, color=PASS_COLOUR if passed else "0.6")
        ax.axvline(np.log(max(level[digit], 1e-12)), color="black", lw=1)
        ax.set_title(f"{digit}: {level[digit]:.2f}", fontsize=9, color=PASS_COLOUR if passed else "black")
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    axes[1].set_xlabel("log p per network", fontsize=8)
    return fig


def elbo_curve(history: Sequence[Mapping[str, float]]) -> Figure:
    """Loss (negative ELBO per training example) and mean-network test accuracy per epoch."""
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], marker="o", color=IN_COLOUR)
    ax.set_xlabel("epoch")
    ax.set_ylabel("-ELBO / example (nats)", color=IN_COLOUR)
    if history and "test_accuracy" in history[0]:
        right = ax.twinx()
        right.plot(epochs, [h["test_accuracy"] for h in history], marker="s", color=OUT_COLOUR)
        right.set_ylabel("test accuracy (mean network)", color=OUT_COLOUR)
    return fig


def posterior_scales(guide: MeanFieldGuide) -> Figure:
    """Histograms of the posterior standard deviations, one panel per latent site (log x axis)."""
    posterior = guide.posterior()
    fig = Figure(figsize=(4 * len(posterior), 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(posterior)))
    for ax, (name, normal) in zip(axes, posterior.items(), strict=True):
        scale = normal.scale.detach().cpu().flatten().numpy()
        ax.hist(np.log10(scale), bins=60, color=IN_COLOUR)
        ax.set_title(f"{name} ({scale.size:,})", fontsize=10)
        ax.set_xlabel("log10 posterior std")
    return fig


def weight_densities(guide: MeanFieldGuide, site: str = "fc1.weight", count: int = 6, seed: int = 0) -> Figure:
    """The posterior Normal density of a few weights of ``site``: some tight, some wide."""
    normal = guide.posterior()[site]
    loc, scale = normal.loc.detach().cpu().flatten(), normal.scale.detach().cpu().flatten()
    order = scale.argsort()
    g = torch.Generator().manual_seed(seed)
    picks = torch.cat([order[: count // 2], order[-(count - count // 2) :]])  # the tightest and the widest
    picks = picks[torch.randperm(len(picks), generator=g)]
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    for i in picks.tolist():
        m, s = loc[i].item(), scale[i].item()
        xs = np.linspace(m - 4 * s, m + 4 * s, 200)
        ax.plot(xs, np.exp(-0.5 * ((xs - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)), label=f"#{i}: N({m:.2f}, {s:.2g}²)")
    ax.set_yscale("log")
    ax.set_xlabel("weight value")
    ax.set_ylabel("posterior density")
    ax.legend(fontsize=7)
    ax.set_title(f"{site}: the tightest and the widest posteriors")
    return fig


def abstention_by_dataset(refused: Mapping[str, Mapping[str, float]], reference: Mapping[str, float] | None = None) -> Figure:
    """Grouped bars: the fraction of each dataset each rule refused (``refused[set][rule]``), and the reference's."""
    names = list(refused)
    rules = list(dict.fromkeys(rule for row in refused.values() for rule in row))
    series = {f"{rule} rule": [refused[n].get(rule, np.nan) for n in names] for rule in rules}
    if reference:
        series["reference notebook"] = [reference.get(n, np.nan) for n in names]
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    x, width = np.arange(len(names)), 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        colour = "0.7" if label == "reference notebook" else None
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width=width, label=label, color=colour)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("refused")
    ax.legend(fontsize=8)
    return fig


def rule_sweep(
    samples: Tensor,
    labels: Tensor,
    thresholds: Sequence[float] = tuple(np.linspace(0.0, 0.95, 20)),
    percentiles: Sequence[float] = (10, 25, 50),
) -> Figure:
    """Risk-coverage of the abstention rule: accuracy on accepted against the fraction answered.

    ``samples`` ``(S, N, 10)`` per-network probabilities of labelled images ``labels`` ``(N,)``;
    one curve per percentile, one point per threshold.
    """
    from inference.predictive import ABSTAIN, decide

    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    labels = labels.cpu()
    for q in percentiles:
        coverage, accuracy = [], []
        for t in thresholds:
            prediction = decide(samples, float(t), float(q))[0].cpu()
            answered = prediction != ABSTAIN
            coverage.append(answered.float().mean().item())
            accuracy.append((prediction[answered] == labels[answered]).float().mean().item() if answered.any() else np.nan)
        ax.plot(coverage, accuracy, marker=".", label=f"percentile {q:g}")
    ax.set_xlabel("coverage (fraction answered)")
    ax.set_ylabel("accuracy on answered")
    ax.legend()
    return fig


def risk_coverage(curves: Mapping[str, tuple[Tensor, Tensor]]) -> Figure:
    """Accuracy on the most confident fraction of inputs, for several confidence scores.

    ``curves`` maps a name to ``(score, correct)``, both ``(N,)``: higher scores are answered first.
    """
    from inference.evaluation.metrics import risk_coverage as curve

    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    for name, (score, correct) in curves.items():
        coverage, risk = curve(score, correct)
        ax.plot(coverage, 1.0 - risk, label=name)
    ax.set_xlabel("coverage")
    ax.set_ylabel("accuracy on answered")
    ax.legend()
    return fig


def guarantee(check: GuaranteeCheck) -> Figure:
    """Histograms of the realised false-refusal rate (against ``alpha``) and risk (against ``max_risk``) over re-splits."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.hist(check.false_refusal, bins=30, color=IN_COLOUR)
    left.axvline(check.alpha, color="black", lw=1.5, label=f"alpha = {check.alpha:g}")
    left.axvline(check.mean_false_refusal, color=OUT_COLOUR, lw=1.5, ls="--", label=f"mean {check.mean_false_refusal:.4f}")
    left.set_xlabel("MNIST test digits refused by the gate")
    left.set_ylabel("re-splits")
    left.legend(fontsize=8)
    right.hist(check.risk, bins=30, color=PASS_COLOUR)
    right.axvline(check.max_risk, color="black", lw=1.5, label=f"max_risk = {check.max_risk:g}")
    right.set_xlabel(f"error among answered (risk gate, delta = {check.delta:g})")
    right.legend(fontsize=8)
    return fig


def study_tradeoff(trials: Sequence[Any], chosen: str) -> Figure:
    """Per configuration (mean over seeds): test forced accuracy against notMNIST (o) and FashionMNIST (s) refusal."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for name in dict.fromkeys(t.name for t in trials):
        rows = [t for t in trials if t.name == name]
        accuracy = np.mean([t.test["forced_accuracy"] for t in rows])
        fashion = np.mean([t.test["FashionMNIST refused"] for t in rows])
        style = {"color": OUT_COLOUR, "s": 60, "zorder": 3} if name == chosen else {"color": IN_COLOUR, "s": 25}
        ax.scatter(np.mean([t.test["notMNIST refused"] for t in rows]), accuracy, marker="o", **style)
        ax.scatter(fashion, accuracy, marker="s", **style)
        ax.annotate(name, (fashion, accuracy), xytext=(4, 2), textcoords="offset points", fontsize=7)
    ax.set_xlabel("refused by the median rule (o: notMNIST, s: FashionMNIST, labelled)")
    ax.set_ylabel("MNIST test accuracy when forced")
    return fig


def image_grid(images: Tensor, titles: Sequence[str], columns: int = 6) -> Figure:
    """``(N, 784)`` images in [0, 1] side by side, each with its title."""
    rows = max(1, -(-len(titles) // columns))
    fig = Figure(figsize=(1.6 * columns, 1.9 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).flatten()
    for ax in axes:
        ax.axis("off")
    for ax, image, title in zip(axes, images, titles, strict=False):
        ax.imshow(_numpy(image).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    return fig


def barcode(rows: Mapping[str, tuple[Tensor, Tensor]], threshold: float | None = None) -> Figure:
    """The "barcode": inputs sorted by confidence, one vertical line each, coloured in or out of distribution.

    ``rows`` maps a model's name to ``(in_scores, out_scores)``; a model that separates
    them well puts all the blue lines to the right of the orange ones.
    """
    fig = Figure(figsize=(10, 1.3 * len(rows) + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(rows), 1))
    for ax, (name, (inside, outside)) in zip(axes, rows.items(), strict=True):
        scores = np.concatenate([_numpy(inside), _numpy(outside)])
        is_in = np.concatenate([np.ones(len(inside), bool), np.zeros(len(outside), bool)])
        order = np.argsort(scores, kind="stable")
        colours = np.where(is_in[order], IN_COLOUR, OUT_COLOUR)
        ax.vlines(np.arange(len(order)), 0, 1, colors=colours, linewidth=0.5)
        if threshold is not None:
            ax.axvline(np.searchsorted(scores[order], threshold), color="black", lw=1.5)
        ax.set_xlim(0, len(order))
        ax.set_yticks([])
        ax.set_title(f"{name}: sorted by confidence (blue: MNIST, orange: out of distribution)", fontsize=9, loc="left")
    axes[-1].set_xlabel("inputs, least to most confident")
    return fig


def roc_curves(panels: Mapping[str, Mapping[str, tuple[Tensor, Tensor]]]) -> Figure:
    """ROC curves, one panel per out-of-distribution set, one line per detector.

    ``panels[set_name][detector_name] = (in_scores, out_scores)``; in-distribution is positive.
    """
    from sklearn.metrics import roc_curve

    fig = Figure(figsize=(4 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (title, curves) in zip(axes, panels.items(), strict=True):
        for name, (inside, outside) in curves.items():
            labels = np.concatenate([np.ones(len(inside)), np.zeros(len(outside))])
            fpr, tpr, _ = roc_curve(labels, np.concatenate([_numpy(inside), _numpy(outside)]))
            ax.plot(fpr, tpr, label=name, lw=1.2)
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
        ax.set_title(f"MNIST vs {title}", fontsize=10)
        ax.set_xlabel("false positive rate (OOD accepted)")
    axes[0].set_ylabel("true positive rate (MNIST accepted)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig


def soak_trace(trace: Sequence[Mapping[str, float | None]]) -> Figure:
    """The served page over a long soak (:attr:`inference.evaluation.soak.Traffic.trace`): the server's resident memory,
    its open descriptors and threads, and the latency of each interval's answers, against hours since the start."""
    hours = np.array([row["seconds"] for row in trace], dtype=float) / 3600

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if row[key] is None else row[key] for row in trace], dtype=float)

    fig = Figure(figsize=(10, 3.2), layout="constrained")
    memory, handles, latency = fig.subplots(1, 3, sharex=True)
    memory.plot(hours, series("rss_mib"), color=IN_COLOUR)
    memory.set_ylabel("server RSS (MiB)")
    handles.plot(hours, series("fds"), color=OUT_COLOUR, label="open descriptors")
    handles.plot(hours, series("threads"), color=PASS_COLOUR, label="threads")
    handles.legend(fontsize=8)
    latency.plot(hours, series("p50_ms"), color=IN_COLOUR, label="p50")
    latency.plot(hours, series("p99_ms"), color=OUT_COLOUR, label="p99")
    latency.set_ylabel("answer latency (ms)")
    latency.legend(fontsize=8)
    for ax in (memory, handles, latency):
        ax.set_xlabel("hours")
        ax.set_ylim(bottom=0)
    return fig
