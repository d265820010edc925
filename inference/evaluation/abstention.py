"""The abstention evaluation: MNIST test, every OOD set and other writers' digits under the median and the calibrated rule.

:func:`evaluate` runs the 100-network predictive once per set and reads every figure from
that one pass: both rules' refusals, the AUROC of each score, the ablation of the gate's
components, and the guarantee check. :mod:`inference.evaluation.report` publishes it.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from bnn import Calibration, TrainedBNN
from inference.calibration import component_p_values, conformal_p_values, gate_scores
from inference.data import ImageSet, load_mnist
from inference.evaluation.guarantee import GuaranteeCheck, resplit_check
from inference.evaluation.metrics import auroc
from inference.evaluation.sets import DIGIT_SETS, OOD_SETS, load_sets
from inference.posterior import Method
from inference.predictive import ABSTAIN, DEFAULT_RULE, AbstainResult, Rule, predict_with_abstain

#: The reference notebook's figures: fraction refused per set, and its MNIST accuracies.
REFERENCE = {
    "forced_accuracy": 0.89,
    "answered_accuracy": 0.96,
    "refused": {"MNIST": 0.125, "notMNIST": 0.79, "uniform noise": 0.95},
}
#: Risk level of the guarantee check when the rule sets none.
CHECK_MAX_RISK = 0.01


@dataclass
class SetResult:
    """One evaluation set: per mode, the fraction refused and answered wrong (and, for digits, read right), and how
    well each score ranks the set apart from MNIST test. On a set of non-digits every answer is wrong."""

    name: str
    size: int
    refused: dict[str, float]
    answered_wrong: dict[str, float] = field(default_factory=dict)
    read_right: dict[str, float] = field(default_factory=dict)
    forced_accuracy: float | None = None
    auroc: dict[str, float] = field(default_factory=dict)
    skipped_files: int = 0

    @property
    def digits(self) -> bool:
        """Whether the set holds labelled digits (whose answers can be right)."""
        return self.forced_accuracy is not None


@dataclass
class DigitResult:
    """MNIST test: accuracy when forced, and per rule the fraction refused and the accuracy on the answered."""

    size: int
    forced_accuracy: float
    refused: dict[str, float]
    answered_accuracy: dict[str, float]
    multi_candidate: float


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured; :meth:`to_dict` is what the JSON holds."""

    mnist: DigitResult
    sets: dict[str, SetResult]
    modes: list[str]
    rule: dict[str, Any]
    ablation: dict[str, dict[str, float]]
    guarantee: GuaranteeCheck | None
    model: dict[str, Any]
    seconds: float
    machine: dict[str, Any]
    missing: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    training: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.guarantee is not None:
            out["guarantee"]["summary"] = self.guarantee.summary()
        return out


def _answers(result: AbstainResult) -> dict[str, torch.Tensor]:
    """``(N,)`` answers of each mode (``ABSTAIN`` where refused), from one prediction."""
    out = {"median": result.median_prediction}
    if result.mode == "calibrated":
        out["calibrated"] = result.prediction
    return out


def set_result(
    name: str, data: ImageSet, result: AbstainResult, in_scores: dict[str, torch.Tensor], digits: bool = False
) -> SetResult:
    """A set's figures from its prediction; with ``digits``, ``data.labels`` are the digits shown."""
    answers = _answers(result)
    refused = {k: (a == ABSTAIN).float().mean().item() for k, a in answers.items()}
    if digits:
        wrong = {k: ((a != ABSTAIN) & (a != data.labels)).float().mean().item() for k, a in answers.items()}
        right = {k: (a == data.labels).float().mean().item() for k, a in answers.items()}
        forced = (result.forced_prediction == data.labels).float().mean().item()
    else:
        wrong, right, forced = {k: 1.0 - v for k, v in refused.items()}, {}, None
    out_scores = _scores(result)
    return SetResult(
        name=name,
        size=len(data),
        refused=refused,
        answered_wrong=wrong,
        read_right=right,
        forced_accuracy=forced,
        auroc={k: auroc(in_scores[k], out_scores[k]) for k in in_scores},
        skipped_files=len(data.skipped),
    )


def _scores(result: AbstainResult) -> dict[str, torch.Tensor]:
    """Scores for AUROC, higher = more like MNIST."""
    out = {
        "max median probability": result.score,
        "entropy": -result.entropy,
        "mutual information": -result.mutual_information,
    }
    if result.p_value is not None and result.density is not None:
        out["VAE ELBO"] = result.density
        if result.class_doubt is not None:
            out["class doubt"] = -result.class_doubt
        out["calibrated p-value"] = result.p_value
    return out


def _ablation(result: AbstainResult, calibration: Calibration, alpha: float) -> dict[str, float]:
    """Fraction refused by each gate component alone (each at ``alpha``), mutual information in its place, the
    density tested one-sided, and the combination."""
    held_out, scores = gate_scores(calibration), gate_scores(result)
    p = component_p_values(held_out, scores)
    one_sided_low = conformal_p_values(-held_out["density"], -scores["density"])
    variants = {
        "entropy alone": p["entropy"],
        "mutual information alone (not in the gate)": conformal_p_values(
            calibration.mutual_information, result.mutual_information
        ),
        "density alone, one-sided (low ELBO)": one_sided_low,
        "density alone, two-sided": p["density"],
        **({"class doubt alone": p["class_doubt"]} if "class_doubt" in p else {}),
        "combined (the gate)": result.p_value,
    }
    return {name: (values <= alpha).float().mean().item() for name, values in variants.items()}


def evaluate(
    trained: TrainedBNN,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    rule: Rule = DEFAULT_RULE,
    method: Method = "local",
    noise_size: int = 10_000,
    photos: int = 300,
    seed: int = 0,
    limit: int | None = None,
    require_all: bool = False,
    resplits: int = 200,
    figures_dir: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Run :func:`predict_with_abstain` on MNIST test and every OOD set and collect the figures.

    The reference median rule is always reported; the calibrated rule too when the model
    carries a calibration. ``limit`` caps each set's size (quick runs); the published
    figures use the full sets. A missing OOD set is reported in ``missing`` (or raises,
    with ``require_all``); MNIST itself is required. With ``figures_dir``, the plots are
    saved there as PNGs and listed in ``figures``.
    """
    started = time.perf_counter()
    calibrated = trained.calibration is not None
    settings = dict(
        num_samples=rule.num_samples,
        threshold=rule.threshold,
        percentile=rule.percentile,
        mode="calibrated" if calibrated else "median",
        method=method,
        seed=seed,
    )
    if calibrated:
        settings |= dict(alpha=rule.alpha, max_risk=rule.max_risk, delta=rule.delta)
    mnist = load_mnist(False, data_dir).head(limit)
    options = dict(noise_size=noise_size, photos=photos, seed=seed, limit=limit, require=require_all)
    ood, missing = load_sets(OOD_SETS | DIGIT_SETS, data_dir, **options)
    digits = predict_with_abstain(trained, mnist.images, **settings, return_samples=figures_dir is not None)
    answers = _answers(digits)
    refusals = {k: a == ABSTAIN for k, a in answers.items()}
    answered_accuracy = {}
    for name, prediction in answers.items():
        right = (prediction == mnist.labels)[~refusals[name]]
        answered_accuracy[name] = right.float().mean().item() if len(right) else float("nan")
    digit_result = DigitResult(
        size=len(mnist),
        forced_accuracy=(digits.forced_prediction == mnist.labels).float().mean().item(),
        refused={k: v.float().mean().item() for k, v in refusals.items()},
        answered_accuracy=answered_accuracy,
        multi_candidate=(digits.candidates.sum(-1) > 1).float().mean().item(),
    )
    held_out = gate_scores(trained.calibration) if calibrated else {}
    ablation = {"MNIST": _ablation(digits, trained.calibration, rule.alpha)} if calibrated else {}
    sets: dict[str, SetResult] = {}
    results = {"MNIST": digits}
    for name, data in ood.items():
        result = predict_with_abstain(trained, data.images, **settings)
        results[name] = result
        sets[name] = set_result(name, data, result, _scores(digits), digits=name in DIGIT_SETS)
        if calibrated:
            ablation[name] = _ablation(result, trained.calibration, rule.alpha)
    guarantee = None
    if calibrated and resplits > 0:
        cal = trained.calibration
        guarantee = resplit_check(
            held_out,
            cal.percentile_probs,
            cal.labels,
            gate_scores(digits),
            digits.percentile_probs,
            mnist.labels,
            alpha=rule.alpha,
            max_risk=rule.max_risk or CHECK_MAX_RISK,
            delta=rule.delta,
            threshold=rule.threshold,
            resplits=resplits,
            seed=seed,
            fisher_combination=cal.fisher_combination,
        )
    evaluation = Evaluation(
        mnist=digit_result,
        sets=sets,
        modes=list(answers),
        rule=asdict(rule) | {"method": method, "seed": seed},
        ablation=ablation,
        guarantee=guarantee,
        model=trained.config.to_dict(),
        seconds=time.perf_counter() - started,
        machine={"platform": platform.platform(), "device": str(trained.device), "threads": torch.get_num_threads()},
        missing=missing,
    )
    if figures_dir is not None:
        evaluation.figures = _save_figures(Path(figures_dir), evaluation, results, mnist)
    return evaluation


def _save_figures(folder: Path, evaluation: Evaluation, results: dict[str, AbstainResult], mnist: ImageSet) -> dict[str, str]:
    from inference.evaluation import plots

    folder.mkdir(parents=True, exist_ok=True)
    refused = {"MNIST": evaluation.mnist.refused} | {name: s.refused for name, s in evaluation.sets.items()}
    figures = {
        "abstention_by_dataset.png": (
            plots.abstention_by_dataset(refused, REFERENCE["refused"]),
            "Fraction of each dataset refused, by rule, beside the reference notebook",
        ),
        "rule_sweep.png": (
            plots.rule_sweep(results["MNIST"].samples, mnist.labels),
            "MNIST test, median rule: accuracy on answered against coverage, thresholds 0 to 0.95, three percentiles",
        ),
    }
    if evaluation.guarantee is not None:
        figures["guarantee.png"] = (
            plots.guarantee(evaluation.guarantee),
            f"Calibrated rule over {len(evaluation.guarantee.false_refusal)} random re-splits of held-out and test digits: "
            "realised false-refusal rate against alpha, and realised risk against max_risk",
        )
    for name, (fig, _) in figures.items():
        fig.savefig(folder / name, dpi=110)
    return {name: caption for name, (_, caption) in figures.items()}
