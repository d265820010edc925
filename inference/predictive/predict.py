"""Classify images, or say "I don't know": :func:`predict_with_abstain`, the package's main entry point."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from torch import Tensor

from bnn import TrainedBNN
from inference.calibration import conformal
from inference.calibration.density import density_scores
from inference.data import mnist_format_batch, to_batch
from inference.posterior import SCORING_SEED, Method, summarise
from inference.predictive.result import AbstainResult
from inference.predictive.rule import (
    ABSTAIN,
    ANSWERED,
    DEFAULT_RULE,
    MODES,
    NO_CANDIDATE,
    NO_INK,
    TOO_UNCERTAIN,
    UNFAMILIAR,
    Mode,
    Rule,
    answer,
)


def predict_with_abstain(
    model: TrainedBNN,
    images: Any,
    num_samples: int = DEFAULT_RULE.num_samples,
    threshold: float = DEFAULT_RULE.threshold,
    percentile: float = DEFAULT_RULE.percentile,
    *,
    mode: Mode | None = None,
    rule: Rule | Mode | None = None,
    alpha: float = DEFAULT_RULE.alpha,
    max_risk: float | None = None,
    delta: float = DEFAULT_RULE.delta,
    method: Method = "local",
    preprocess: Literal["mnist"] | None = None,
    has_ink: Tensor | None = None,
    return_samples: bool = False,
    chunk_size: int | None = None,
    seed: int | None = SCORING_SEED,
) -> AbstainResult:
    """Classify images, or say "I don't know".

    Parameters
    ----------
    model
        A :class:`~bnn.TrainedBNN` (what :func:`bnn.load_model` returns).
    images
        A tensor or numpy array shaped ``(28, 28)``, ``(N, 28, 28)``,
        ``(N, 1, 28, 28)`` or ``(N, 784)`` with floats in [0, 1] or uint8 in
        0..255; or a PIL image or a list of PIL images (converted to 28x28 grayscale).
        With ``preprocess="mnist"``: photos, scans or drawings of any size (PIL images,
        2-D arrays, or lists of them).
    num_samples
        Networks sampled from the posterior (100 in the reference).
    threshold
        A digit is a candidate when its percentile probability exceeds this.
    percentile
        Which percentile across networks to compare with the threshold (50: the median).
    mode
        ``"median"``: the reference rule (candidates only). ``"calibrated"``: the same
        candidates behind a gate that refuses unfamiliar inputs, with a false-refusal rate
        on digits like the held-out ones of at most ``alpha``. ``None`` (default): calibrated
        when the model carries a calibration, else median (with a warning).
    rule
        A :class:`Rule` holding all of the rule's settings, in place of ``num_samples``, ``threshold``,
        ``percentile``, ``alpha``, ``max_risk`` and ``delta`` (give one or the other). A string here is the
        deprecated spelling of ``mode`` (it warns).
    alpha
        Calibrated rule: refuse inputs whose conformal p-value is at most ``alpha``.
    max_risk, delta
        Calibrated rule, optional: also refuse answers whose confidence is below the threshold
        that keeps the error among answered held-out digits at most ``max_risk``, with
        probability at least ``1 - delta`` over the calibration draw.
    method
        ``"local"`` (the default: each input's first-layer pre-activations drawn
        from their exact Normal, about 4x faster) or ``"weights"`` (whole sampled
        networks shared by all inputs); see :func:`iter_predictive_probs`.
    preprocess
        ``None`` (default): the images are already in MNIST's format. ``"mnist"``: bring them to
        it first, as MNIST was made (see :mod:`inference.data.preprocess`): grayscale, inverted when the
        background is light, cropped to the ink, fitted to 20x20 and centred by mass. Images with
        no ink are refused (reason ``NO_INK``).
    has_ink
        ``(N,)`` bool, for images already brought to MNIST's format by
        :func:`inference.data.mnist_format` elsewhere (say, in DataLoader workers): False
        marks those that had no ink, which are refused (reason ``NO_INK``).
    return_samples
        Keep the ``(S, N, C)`` per-network probabilities in the result.
    seed
        Seeds the sampled networks (and the VAE's draws), so that the same input gets the
        same answer; ``None`` uses the global random state. The calibration scored its held-out
        digits with the default (:data:`inference.posterior.SCORING_SEED`), so that by default they
        and ``images`` are scored by one function.

    Returns
    -------
    AbstainResult
    """
    if not isinstance(model, TrainedBNN):
        raise TypeError(f"model must be a bnn.TrainedBNN (from bnn.load_model), got {type(model).__name__}")
    settings, mode = _settings(Rule(num_samples, threshold, percentile, alpha, max_risk, delta), rule, mode)
    mode = _resolve_mode(model, mode, settings)
    num_samples, threshold, percentile = settings.num_samples, settings.threshold, settings.percentile
    alpha, max_risk, delta = settings.alpha, settings.max_risk, settings.delta
    if preprocess == "mnist":
        if has_ink is not None:
            raise ValueError("pass has_ink only for images already preprocessed (preprocess=None)")
        images, has_ink = mnist_format_batch(images)
    elif preprocess is not None:
        raise ValueError(f"preprocess must be None or 'mnist', got {preprocess!r}")
    x = to_batch(images, expected_dim=model.model.config.input_dim).to(model.device)
    posterior = summarise(
        model, x, num_samples, percentile, method=method, chunk_size=chunk_size, seed=seed, keep_samples=return_samples
    )
    level, entropies = posterior.percentile_probs, posterior.entropy
    prediction, candidates = answer(level, threshold)
    reason = torch.where(prediction == ABSTAIN, NO_CANDIDATE, ANSWERED)
    p_value = density = doubt = None
    if mode == "calibrated":
        calibration = model.calibration
        assert calibration is not None  # checked by _resolve_mode
        from_density = density_scores(
            calibration.vae, x, level.argmax(-1), calibration.vae_particles, seed, calibration.has_class_doubt
        )
        density, doubt = from_density["density"], from_density.get("class_doubt")
        held_out = conformal.gate_scores(calibration)
        p_value = conformal.unfamiliarity_p_value(
            held_out, {"entropy": entropies, **from_density}, calibration.fisher_combination
        )
        if max_risk is not None:
            held_answers, _ = answer(calibration.percentile_probs, threshold)
            cutoff = conformal.risk_threshold(
                held_out,
                calibration.percentile_probs.max(-1).values,
                answered=held_answers != ABSTAIN,
                correct=held_answers == calibration.labels,
                alpha=alpha,
                max_risk=max_risk,
                delta=delta,
                fisher_combination=calibration.fisher_combination,
            )
            reason = torch.where((reason == ANSWERED) & (level.max(-1).values < cutoff), TOO_UNCERTAIN, reason)
        reason = torch.where(p_value <= alpha, UNFAMILIAR, reason)
    if has_ink is not None:
        if has_ink.shape != reason.shape or has_ink.dtype != torch.bool:
            raise ValueError(
                f"has_ink must be a bool tensor of shape {tuple(reason.shape)}, got {has_ink.dtype} {tuple(has_ink.shape)}"
            )
        reason = torch.where(has_ink.cpu(), reason, NO_INK)
    abstained = reason != ANSWERED
    return AbstainResult(
        prediction=torch.where(abstained, ABSTAIN, prediction),
        abstained=abstained,
        reason=reason,
        candidates=candidates,
        percentile_probs=level,
        mean_probs=posterior.mean_probs,
        entropy=entropies,
        mutual_information=posterior.mutual_information,
        mode=mode,
        threshold=float(threshold),
        percentile=float(percentile),
        alpha=float(alpha) if mode == "calibrated" else None,
        p_value=p_value,
        density=density,
        class_doubt=doubt,
        samples=posterior.samples,
        images=x.cpu() if preprocess == "mnist" else None,
    )


def _settings(keywords: Rule, rule: Rule | str | None, mode: Mode | None) -> tuple[Rule, Mode | None]:
    """The rule's settings and mode, from the keywords or a :class:`Rule`, and the deprecated ``rule="median"``."""
    if isinstance(rule, Rule):
        if keywords != DEFAULT_RULE:
            raise ValueError("give the rule's settings either as rule=Rule(...) or as keywords, not both")
        return rule, mode
    if rule is None:
        return keywords, mode
    warnings.warn(
        f"predict_with_abstain(rule={rule!r}) is deprecated: pass mode={rule!r} (rule= now takes a Rule)",
        DeprecationWarning,
        stacklevel=3,
    )
    if mode is not None and mode != rule:
        raise ValueError(f"got mode={mode!r} and the deprecated rule={rule!r}; pass mode alone")
    return keywords, rule  # type: ignore[return-value]


def _resolve_mode(model: TrainedBNN, mode: Mode | None, settings: Rule) -> Mode:
    calibration = model.calibration
    if mode is None:
        if calibration is None:
            warnings.warn(
                "this model carries no calibration, so the reference median rule decides alone; "
                "calibrate it with inference.calibrate(model, held_out_digits, training_digits) to refuse unfamiliar "
                "inputs with a guaranteed false-refusal rate",
                stacklevel=3,
            )
            return "median"
        mode = "calibrated"
    if mode not in MODES:
        raise ValueError(f"mode must be 'median', 'calibrated' or None, got {mode!r}")
    if mode == "median":
        if settings.max_risk is not None:
            raise ValueError("max_risk applies to the calibrated rule only; pass mode='calibrated'")
        return mode
    if calibration is None:
        raise ValueError(
            "mode='calibrated' needs a model with a calibration; this one has none. Calibrate it with "
            "inference.calibrate(model, held_out_digits, training_digits), or use mode='median'"
        )
    if settings.num_samples != calibration.num_samples:
        raise ValueError(
            f"the calibration was computed with num_samples={calibration.num_samples}; its p-values hold only "
            f"for predictions that sample as many networks (got num_samples={settings.num_samples})"
        )
    if settings.max_risk is not None and settings.percentile != calibration.percentile:
        raise ValueError(
            f"max_risk is calibrated for percentile={calibration.percentile:g} (got percentile={settings.percentile:g})"
        )
    return mode
