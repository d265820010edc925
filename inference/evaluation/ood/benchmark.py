"""One out-of-distribution benchmark for every detector, on the same data and with the same metrics.

:func:`run` trains (or receives) what each detector needs, scores MNIST test and every
OOD set, and returns an :class:`OODResults`; :func:`figures` draws its ROC and
risk-coverage curves; :mod:`inference.evaluation.report` writes the page.
``scripts/benchmark_ood.py`` is the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from scipy.stats import mannwhitneyu
from torch import Tensor

from bnn import TrainedBNN
from bnn.config import check_fields, option
from inference.calibration.conformal import conformal_p_values
from inference.calibration.fit import CalibrationConfig
from inference.data import ImageSet, load_mnist, split_calibration
from inference.evaluation import metrics, plots
from inference.evaluation.contenders import REFUSAL_RATE
from inference.evaluation.ood.adversarial import bim, fgsm
from inference.evaluation.ood.classifiers import MLP, batched
from inference.evaluation.ood.detectors import (
    KNN,
    ODIN,
    BayesianDetector,
    Detector,
    Energy,
    FeatureGMM,
    Mahalanobis,
    MaxSoftmax,
    TemperatureScaled,
    VAEElbo,
    ViM,
)
from inference.evaluation.sets import DIGIT_SETS, load_fashion_mnist, load_ood_sets, load_sets
from inference.training.classifier import CNN, train_classifier

#: The VAE-ELBO baseline's widths: the gate's density's, without the class.
BASELINE_VAE = CalibrationConfig().vae_config(num_classes=0)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes and budgets; the defaults are the published run. Every checked field is a flag of the script."""

    classifier_epochs: int = option(3, "positive_int", "epochs of the deterministic MLP and CNN")
    vae_epochs: int = option(CalibrationConfig.vae_epochs, "positive_int", "epochs of each VAE (as the gate's density)")
    gmm_components: int = option(20, "positive_int", "components of the feature GMM")
    held_out: int = option(5_000, "positive_int", "training images kept back for temperature scaling")
    train_limit: int | None = option(None, "positive_int", "use the first N training images (quick runs)", True)
    limit: int | None = option(None, "positive_int", "cap on every evaluation set (quick runs)", True)
    noise_size: int = option(10_000, "positive_int", "images per noise set")
    photos: int = option(300, "positive_int", "photographs and crops of them")
    adversarial_images: int = option(2_000, "positive_int", "MNIST test images attacked")
    adversarial_eps: tuple[float, ...] = (0.1, 0.2)
    seed: int = option(0, "int", "random seed")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class OODResults:
    """What :func:`run` measured. ``curves`` (scores and risk curves, for the figures) is left out of :meth:`to_dict`."""

    config: dict[str, Any]
    sets: dict[str, int]
    table: dict[str, dict[str, dict[str, float]]]
    refusals: dict[str, dict[str, dict[str, float]]]
    classifiers: dict[str, dict[str, float]]
    findings: dict[str, Any]
    timings: dict[str, float]
    seconds: float
    scores: dict[str, dict[str, Tensor]] = field(repr=False, default_factory=dict)
    risk_curves: dict[str, tuple[Tensor, Tensor]] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("scores", "risk_curves")}


#: Roles of the detectors that are also classifiers: calibration and risk-coverage are measured on them.
CLASSIFIER_ROLES = ("bnn_max_median", "mlp_softmax", "mlp_temperature", "cnn_softmax")


def run(
    trained: TrainedBNN, data_dir: str | None = None, config: BenchmarkConfig | None = None, progress: bool = True
) -> OODResults:
    """Fit every detector, score every set, and compute the table and the findings.

    The baselines are fitted on MNIST training images; temperature scaling on a held-out
    part of them. The Bayesian scores are read from one pass of the predictive per set.
    """
    config = config or BenchmarkConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    train_all = load_mnist(True, data_dir).head(config.train_limit)
    train, held_out = split_calibration(train_all, min(config.held_out, len(train_all) // 10), config.seed)
    test = load_mnist(False, data_dir).head(config.limit)
    ood, _ = load_ood_sets(
        data_dir, noise_size=config.noise_size, photos=config.photos, seed=config.seed, limit=config.limit, require=True
    )
    digits, _ = load_sets(DIGIT_SETS, data_dir, limit=config.limit, require=True)

    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return out

    mlp = timed(
        "train MLP", lambda: train_classifier(MLP(), train, config.classifier_epochs, seed=config.seed, progress=progress)
    )
    cnn = timed(
        "train CNN", lambda: train_classifier(CNN(), train, config.classifier_epochs, seed=config.seed, progress=progress)
    )
    roles = ["max_median", "entropy", "mutual_information"] + (["p_value"] if trained.calibration is not None else [])
    bayesian = {f"bnn_{kind}": BayesianDetector(trained, kind, seed=config.seed) for kind in roles}  # type: ignore[arg-type]
    detectors: dict[str, Detector] = {
        **bayesian,
        "mlp_softmax": MaxSoftmax(mlp, "MLP max-softmax"),
        "mlp_temperature": timed("fit temperature", lambda: TemperatureScaled(mlp, "MLP temperature-scaled").fit(held_out)),
        "cnn_softmax": MaxSoftmax(cnn, "CNN max-softmax"),
        "vae": timed(
            "train VAE",
            lambda: VAEElbo(config.vae_epochs, seed=config.seed, progress=progress, config=BASELINE_VAE).fit(train),
        ),
        "gmm": timed(
            "fit GMM", lambda: FeatureGMM(mlp, config.gmm_components, seed=config.seed, name="MLP features GMM").fit(train)
        ),
        "mahalanobis": timed("fit Mahalanobis", lambda: Mahalanobis(mlp, "MLP features Mahalanobis").fit(train)),
        "mlp_energy": Energy(mlp, name="MLP energy"),
        "mlp_odin": ODIN(mlp, name="MLP ODIN"),
        "mlp_knn": timed("fit KNN", lambda: KNN(mlp, name="MLP features KNN").fit(train)),
        "mlp_vim": timed("fit ViM", lambda: ViM(mlp, name="MLP ViM").fit(train)),
    }
    # The validation digits set each detector's refusal threshold; the digit sets are scored for the refusals only.
    sets = {"MNIST": test} | ood | digits | {"validation": held_out}
    # The calibrated prediction, where there is one, holds every Bayesian score.
    scorer = bayesian.get("bnn_p_value") or bayesian["bnn_max_median"]
    predictions = timed("predict BNN", lambda: {k: scorer.predict_all(v.images) for k, v in sets.items()})
    scores: dict[str, dict[str, Tensor]] = {}
    for role, detector in detectors.items():
        if isinstance(detector, BayesianDetector):
            scores[role] = {k: detector.score_result(r) for k, r in predictions.items()}
        else:
            scores[role] = timed(f"score {detector.name}", lambda d=detector: {k: d.score(v.images) for k, v in sets.items()})
    table = {detectors[role].name: {name: metrics.ood_metrics(s["MNIST"], s[name]) for name in ood} for role, s in scores.items()}
    labelled = {"MNIST": test} | digits
    # Each classifier's answers once; every detector built on it gates the same answers.
    gated_answers = {
        "bnn": {k: predictions[k].forced_prediction for k in labelled},
        "cnn": {k: batched(cnn, v.images).argmax(-1) for k, v in labelled.items()},
        "mlp": {k: batched(mlp, v.images).argmax(-1) for k, v in labelled.items()},
    }
    refusals = {
        detectors[role].name: refusal_figures(s, gated_answers[_answerer(role)], labelled, ood, role == "bnn_p_value")
        for role, s in scores.items()
    }

    calibration, risk_curves, answers = {}, {}, {}
    for role in CLASSIFIER_ROLES:
        detector = detectors[role]
        if isinstance(detector, BayesianDetector):
            top = predictions["MNIST"].mean_probs.max(-1)
            confidence, predicted, name = top.values, top.indices, "BNN mean probability"
        else:
            (confidence, predicted), name = detector.predict(test.images), detector.name
        answers[role] = predicted
        correct = predicted == test.labels
        calibration[name] = {
            "accuracy": correct.float().mean().item(),
            "ece": metrics.expected_calibration_error(confidence, correct),
            "aurc": metrics.aurc(confidence, correct),
        }
        risk_curves[name] = (confidence, correct)

    findings = _findings(trained, detectors, scores, predictions, answers, test, ood, mlp, config, timings)
    findings["likelihood_paradox"] = timed("likelihood paradox", lambda: likelihood_paradox(data_dir, config, progress))
    return OODResults(
        config=asdict(config),
        sets={k: len(v) for k, v in sets.items()},
        table=table,
        refusals=refusals,
        classifiers=calibration,
        findings=findings,
        timings=timings,
        seconds=time.perf_counter() - started,
        scores={detectors[role].name: {k: v for k, v in s.items() if k in ("MNIST", *ood)} for role, s in scores.items()},
        risk_curves=risk_curves,
    )


def _answerer(role: str) -> str:
    """Whose answer a detector gates: the BNN's forced answer for its scores, the CNN's for its max-softmax, else the MLP's."""
    return "bnn" if role.startswith("bnn_") else "cnn" if role.startswith("cnn_") else "mlp"


def refusal_figures(
    scores: dict[str, Tensor],
    answers: dict[str, Tensor],
    labelled: dict[str, ImageSet],
    ood: dict[str, ImageSet],
    calibrated: bool = False,
) -> dict[str, dict[str, float]]:
    """Refused (and, on digit sets, answered right / wrong) when the detector refuses :data:`REFUSAL_RATE` of digits.

    The threshold is the one-score conformal gate on ``scores["validation"]`` (digits held out from every
    fit): an input is refused when its p-value is at most the rate. With ``calibrated`` the scores already are
    conformal p-values against those same digits (the BNN's calibrated rule), so they are gated as they are:
    a second gate on the digits that made them would be in-sample. On non-digit sets every answer is wrong.
    """
    strangeness = -scores["validation"]
    out: dict[str, dict[str, float]] = {}
    for name in (*labelled, *ood):
        p_values = scores[name] if calibrated else conformal_p_values(strangeness, -scores[name])
        answered = p_values > REFUSAL_RATE
        row = {"refused": 1 - answered.float().mean().item()}
        if name in labelled:
            right = answers[name] == labelled[name].labels
            row["right"] = (answered & right).float().mean().item()
            row["wrong"] = (answered & ~right).float().mean().item()
        out[name] = row
    return out


def _findings(
    trained: TrainedBNN,
    detectors: dict[str, Detector],
    scores: dict[str, dict[str, Tensor]],
    predictions: dict[str, Any],
    answers: dict[str, Tensor],
    test: ImageSet,
    ood: dict[str, ImageSet],
    mlp: MLP,
    config: BenchmarkConfig,
    timings: dict[str, float],
) -> dict[str, Any]:
    out: dict[str, Any] = {}

    # "Two thirds of FashionMNIST get > 99% confidence from an MNIST classifier."
    fashion = ood["FashionMNIST"].images
    over = {
        detectors[r].name: (detectors[r].predict(fashion)[0] > 0.99).float().mean().item() for r in ("mlp_softmax", "cnn_softmax")
    }
    over["BNN mean probability"] = (predictions["FashionMNIST"].mean_probs.max(-1).values > 0.99).float().mean().item()
    over["BNN median probability"] = (predictions["FashionMNIST"].score > 0.99).float().mean().item()
    out["fashion_over_99"] = over
    out["temperature"] = getattr(detectors["mlp_temperature"], "temperature", None)

    # "A VAE separates FashionMNIST better than max-softmax."
    out["vae_vs_softmax_fashion_auroc"] = {
        detectors[r].name: metrics.auroc(scores[r]["MNIST"], scores[r]["FashionMNIST"])
        for r in ("vae", "mlp_softmax", "cnn_softmax")
    }

    # Mistakes have unusual features: GMM log-likelihood of right vs wrong MLP answers on MNIST test.
    correct = answers["mlp_softmax"] == test.labels
    gmm = scores["gmm"]["MNIST"]
    if (~correct).any() and correct.any():
        test_result = mannwhitneyu(gmm[correct].numpy(), gmm[~correct].numpy(), alternative="greater")
        out["mistakes_gmm_mann_whitney"] = {
            "U": float(test_result.statistic),
            "p_value": float(test_result.pvalue),
            "mistakes": int((~correct).sum()),
        }
        out["mistake_detection_auroc_mlp"] = {
            detectors[r].name: metrics.auroc(s["MNIST"][correct], s["MNIST"][~correct])
            for r, s in scores.items()
            if not r.startswith("bnn_")
        }
    bnn_correct = answers["bnn_max_median"] == test.labels  # the forced answer: argmax of the mean
    if (~bnn_correct).any():
        out["mistake_detection_auroc_bnn"] = {
            detectors[r].name: metrics.auroc(s["MNIST"][bnn_correct], s["MNIST"][~bnn_correct])
            for r, s in scores.items()
            if r.startswith("bnn_")
        }

    # Adversarial inputs against the deterministic MLP; the clean images' scores are those already computed.
    n = min(config.adversarial_images, len(test))
    clean, labels = test.images[:n], test.labels[:n]
    attacks: dict[str, Any] = {}
    t = time.perf_counter()
    scorer = detectors.get("bnn_p_value") or detectors["bnn_max_median"]
    assert isinstance(scorer, BayesianDetector)
    for eps in config.adversarial_eps:
        for attack_name, attack in (("FGSM", fgsm), ("BIM", bim)):
            adversarial = attack(mlp, clean, labels, eps)
            key = f"{attack_name} eps={eps:g}"
            still_right = (batched(mlp, adversarial).argmax(-1) == labels).float().mean().item()
            bnn = scorer.predict_all(adversarial)
            attacked = {
                r: d.score_result(bnn) if isinstance(d, BayesianDetector) else d.score(adversarial) for r, d in detectors.items()
            }
            attacks[key] = {
                "mlp_accuracy": still_right,
                "bnn_forced_accuracy": (bnn.forced_prediction == labels).float().mean().item(),
                "bnn_abstention": bnn.abstained.float().mean().item(),
                "detection_auroc": {d.name: metrics.auroc(scores[r]["MNIST"][:n], attacked[r]) for r, d in detectors.items()},
            }
    timings["adversarial"] = time.perf_counter() - t
    out["adversarial"] = attacks
    return out


def likelihood_paradox(data_dir: str | None, config: BenchmarkConfig, progress: bool = True) -> dict[str, float]:
    """Train the same VAE on FashionMNIST and score MNIST test: AUROC of FashionMNIST-vs-MNIST by ELBO.

    Below 0.5 means the generative model assigns higher likelihood to digits it never saw.
    """
    fashion_train = load_fashion_mnist(True, data_dir).head(config.train_limit)
    fashion_test = load_fashion_mnist(False, data_dir).head(config.limit)
    mnist_test = load_mnist(False, data_dir).head(config.limit)
    vae = VAEElbo(config.vae_epochs, seed=config.seed, progress=progress, config=BASELINE_VAE).fit(fashion_train)
    in_scores, out_scores = vae.score(fashion_test.images), vae.score(mnist_test.images)
    return {
        "auroc_fashion_vs_mnist": metrics.auroc(in_scores, out_scores),
        "mean_elbo_fashion_test": in_scores.mean().item(),
        "mean_elbo_mnist_test": out_scores.mean().item(),
    }


def figures(results: OODResults) -> dict[str, Figure]:
    """ROC curves per OOD set and the risk-coverage curves of the classifiers."""
    sets = [k for k in next(iter(results.scores.values())) if k != "MNIST"]
    panels = {s: {name: (v["MNIST"], v[s]) for name, v in results.scores.items()} for s in sets}
    return {"ood_roc.png": plots.roc_curves(panels), "ood_risk_coverage.png": plots.risk_coverage(results.risk_curves)}
