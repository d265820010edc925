"""Sample S networks from the posterior and abstain when the model does not know.

Two rules decide, from the same samples:

- ``"median"``, the reference notebook's: a digit is a *candidate* for an input when its
  ``percentile``-th (by default the median) probability across the S sampled networks
  exceeds ``threshold``; the answer is the candidate with the highest such probability,
  and an input without candidates is refused.
- ``"calibrated"``: the same candidates, after a gate that refuses *unfamiliar* inputs by
  a conformal p-value computed against held-out digits (:mod:`inference.calibration`),
  and optionally a confidence threshold that keeps the error among answers below ``max_risk``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pyro
import torch
from pyro import poutine
from torch import Tensor

from bnn import BayesianMLP, MeanFieldGuide, TrainedBNN
from bnn.config import check_fields, option
from inference import calibration as conformal
from inference.density import vae_elbo
from inference.inputs import to_batch
from inference.preprocess import mnist_format_batch
from inference.rng import forked_rng

#: Value of ``prediction`` for an input the model refuses to answer.
ABSTAIN = -1

#: ``AbstainResult.reason`` codes, and what each means.
ANSWERED, NO_CANDIDATE, UNFAMILIAR, TOO_UNCERTAIN, NO_INK = 0, 1, 2, 3, 4
REASONS = ("answered", "no candidate", "unfamiliar input", "too uncertain", "no ink")
#: Why the model said "I don't know", per reason code, for people.
EXPLANATIONS = (
    "",
    "no digit is likely enough across the networks",
    "this doesn't look like a digit",
    "not sure enough to answer",
    "there is no ink: draw or upload a digit",
)

Method = Literal["weights", "local"]
RuleName = Literal["median", "calibrated"]


@dataclass(frozen=True)
class Rule:
    """The decision rule's settings; every field is also a command-line flag.

    ``alpha``, ``max_risk`` and ``delta`` apply to the calibrated rule only.
    """

    num_samples: int = option(100, "positive_int", "networks sampled from the posterior per input")
    threshold: float = option(0.2, "unit", "a digit is a candidate when its percentile probability exceeds this")
    percentile: float = option(50.0, "percent", "percentile of each digit's probability across networks (50: the median)")
    alpha: float = option(0.01, "open_unit", "calibrated rule: refuse inputs whose conformal p-value is <= alpha")
    max_risk: float | None = option(
        None, "open_unit", "calibrated rule: also refuse answers below the confidence that keeps the error <= this", True
    )
    delta: float = option(0.1, "open_unit", "calibrated rule: the max_risk bound holds with probability 1 - delta")

    def __post_init__(self) -> None:
        check_fields(self)


DEFAULT_RULE = Rule()


@dataclass
class AbstainResult:
    """What :func:`predict_with_abstain` decided, per input (``N`` inputs, ``C`` classes).

    Attributes
    ----------
    prediction
        ``(N,)`` int64: the chosen class, or ``ABSTAIN`` (-1).
    abstained
        ``(N,)`` bool: True where the model said "I don't know".
    reason
        ``(N,)`` int64: why (``ANSWERED``, ``NO_CANDIDATE``, ``UNFAMILIAR``, ``TOO_UNCERTAIN``, or ``NO_INK``
        for a blank image under ``preprocess="mnist"``); see :meth:`reasons`.
    candidates
        ``(N, C)`` bool: the classes whose percentile probability exceeds the threshold.
    percentile_probs
        ``(N, C)``: each class's ``percentile``-th probability across the networks.
    mean_probs
        ``(N, C)``: the posterior predictive (mean over networks); its argmax is the forced answer.
    entropy
        ``(N,)``: entropy of the posterior predictive in nats (total uncertainty).
    mutual_information
        ``(N,)``: mutual information between the label and the weights in nats,
        ``entropy - mean over networks of each network's entropy`` (how much the networks disagree).
    rule
        ``"median"`` or ``"calibrated"``.
    p_value
        ``(N,)``, calibrated rule only: the conformal p-value of the input being as familiar as
        the held-out digits; the gate refuses where ``p_value <= alpha``.
    density
        ``(N,)``, calibrated rule only: the VAE's ELBO of the input in nats.
    samples
        ``(S, N, C)`` per-network probabilities, only when asked for.
    images
        ``(N, 784)``: the images the networks saw, only with ``preprocess="mnist"``.
    """

    prediction: Tensor
    abstained: Tensor
    reason: Tensor
    candidates: Tensor
    percentile_probs: Tensor
    mean_probs: Tensor
    entropy: Tensor
    mutual_information: Tensor
    rule: RuleName
    threshold: float
    percentile: float
    alpha: float | None = None
    p_value: Tensor | None = None
    density: Tensor | None = None
    samples: Tensor | None = None
    images: Tensor | None = None

    def __len__(self) -> int:
        return self.prediction.shape[0]

    @property
    def forced_prediction(self) -> Tensor:
        """``(N,)``: the argmax of the mean probability, answering every input."""
        return self.mean_probs.argmax(-1)

    @property
    def score(self) -> Tensor:
        """``(N,)``: the highest percentile probability (the median rule's confidence; higher = more familiar)."""
        return self.percentile_probs.max(-1).values

    @property
    def median_prediction(self) -> Tensor:
        """``(N,)``: what the reference median rule answers (the best candidate, or ``ABSTAIN``), whatever ``rule`` was."""
        return answer(self.percentile_probs, self.threshold)[0]

    def reasons(self) -> list[str]:
        """Every input's reason in words (``"answered"``, ``"no candidate"``, ``"unfamiliar input"``, ...)."""
        return [REASONS[code] for code in self.reason.tolist()]

    def candidate_sets(self) -> list[list[int]]:
        """Every input's candidate classes, best first, as Python lists."""
        order = self.percentile_probs.argsort(-1, descending=True)
        return [[c for c in row if chosen[c]] for row, chosen in zip(order.tolist(), self.candidates.tolist(), strict=True)]

    def answers(self) -> list[str]:
        """Every input's answer in words: ``"7"``, ``"3 or 5"`` (the best candidate first) or "I don't know — why"."""
        texts = []
        for code, candidates in zip(self.reason.tolist(), self.candidate_sets(), strict=True):
            texts.append(" or ".join(map(str, candidates)) if code == ANSWERED else f"I don't know — {EXPLANATIONS[code]}")
        return texts


def decide(
    samples: Tensor, threshold: float = DEFAULT_RULE.threshold, percentile: float = DEFAULT_RULE.percentile
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the abstention rule to per-network probabilities.

    Parameters
    ----------
    samples
        ``(S, N, C)`` probabilities from ``S`` networks.

    Returns
    -------
    prediction ``(N,)`` (``ABSTAIN`` where no candidate), candidates ``(N, C)``, percentile probabilities ``(N, C)``.
    """
    Rule(threshold=threshold, percentile=percentile)
    level = percentile_levels(samples, percentile)
    prediction, candidates = answer(level, threshold)
    return prediction, candidates, level


def percentile_levels(samples: Tensor, percentile: float) -> Tensor:
    """``(S, N, C)`` per-network probabilities -> ``(N, C)``: each class's ``percentile``-th probability across networks."""
    samples = samples.float()
    # torch.quantile takes at most 2**24 elements at a time.
    step = max(1, 2**24 // max(1, samples.shape[0] * samples.shape[2]))
    if not samples.shape[1]:
        return samples.new_empty(samples.shape[1:])
    return torch.cat(
        [torch.quantile(samples[:, i : i + step], percentile / 100.0, dim=0) for i in range(0, samples.shape[1], step)]
    )


def answer(level: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The rule's choice from percentile probabilities ``level`` ``(N, C)``.

    Returns the prediction ``(N,)``, the candidate with the highest level (``ABSTAIN`` where
    there is none), and the candidates ``(N, C)``, the classes whose level exceeds ``threshold``.
    """
    candidates = level > threshold
    best = level.masked_fill(~candidates, -1.0).argmax(-1)
    return torch.where(candidates.any(-1), best, torch.full_like(best, ABSTAIN)), candidates


def entropy(probs: Tensor) -> Tensor:
    """``(..., C)`` probabilities -> ``(...)`` entropy in nats (``0 log 0 = 0``)."""
    return -torch.special.xlogy(probs, probs).sum(-1)


def mutual_information(samples: Tensor) -> Tensor:
    """``(S, N, C)`` per-network probabilities -> ``(N,)`` mutual information between label and weights in nats."""
    return (entropy(samples.mean(0)) - entropy(samples).mean(0)).clamp_min_(0.0)


def sample_weights(guide: MeanFieldGuide, num_samples: int) -> dict[str, Tensor]:
    """Draw ``num_samples`` whole networks from the guide in one vectorised call.

    Returns every latent site with a leading dimension ``num_samples``.
    """
    with torch.no_grad(), pyro.plate("networks", num_samples, dim=-1):
        trace = poutine.trace(guide).get_trace()
    return {name: site["value"] for name, site in trace.nodes.items() if site["type"] == "sample"}


def iter_predictive_probs(
    model: BayesianMLP,
    guide: MeanFieldGuide,
    x: Tensor,
    num_samples: int = DEFAULT_RULE.num_samples,
    method: Method = "local",
    chunk_size: int | None = None,
    seed: int | None = None,
) -> Iterator[Tensor]:
    """Class probabilities of every input under ``num_samples`` posterior networks, chunk by chunk.

    Parameters
    ----------
    x
        ``(N, input_dim)`` floats in [0, 1], on the guide's device.
    method
        ``"weights"`` samples ``num_samples`` whole networks once and evaluates
        every input under all of them (batched matrix products). ``"local"``
        draws each input's first-layer pre-activations from their exact Normal
        under the mean-field posterior (local reparameterisation), then applies
        ``num_samples`` sampled output layers: every input still gets
        ``num_samples`` exact independent draws from its predictive distribution,
        at a fraction of the cost (the 784x1024 product is done once, not S times).
    chunk_size
        Inputs evaluated at once; memory is bounded by ``num_samples * chunk_size * hidden_dim``
        floats. ``None`` picks 1024 for ``"weights"`` (large products run fastest) and about
        16M hidden activations' worth for ``"local"`` (elementwise work stays in cache).
    seed
        Seeds the sampling (a fixed seed gives the same networks every call).

    Yields
    ------
    Tensor
        ``(num_samples, n, num_classes)`` probabilities of the next ``n <= chunk_size`` inputs.
    """
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if chunk_size is None:
        chunk_size = default_chunk_size(method, num_samples, model.config.hidden_dim)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if method not in ("weights", "local"):
        raise ValueError(f"method must be 'weights' or 'local', got {method!r}")
    # Without a seed the draws come from (and advance) the global stream.
    with torch.no_grad(), forked_rng(x.device, seed) if seed is not None else contextlib.nullcontext():
        if method == "weights":
            params: dict[str, Any] = sample_weights(guide, num_samples)
            draws = None
        else:
            # Pre-activations of the first layer per input; the small last layer as S sampled matrices.
            first = f"{model.layer_names[0]}."
            posterior = guide.posterior()
            params = {k: v if k.startswith(first) else v.sample((num_samples,)) for k, v in posterior.items()}
            draws = num_samples
        for start in range(0, x.shape[0], chunk_size):
            yield torch.softmax(model.sampled_logits(x[start : start + chunk_size], params, draws), -1)


def default_chunk_size(method: Method, num_samples: int, hidden_dim: int) -> int:
    """Inputs per chunk: 1024 for ``"weights"`` (large products run fastest), about 16M hidden
    activations for ``"local"`` (its elementwise work stays in cache)."""
    return 1024 if method == "weights" else max(1, 2**24 // (num_samples * hidden_dim))


def predictive_probs(
    model: BayesianMLP, guide: MeanFieldGuide, x: Tensor, num_samples: int = DEFAULT_RULE.num_samples, **kwargs: Any
) -> Tensor:
    """All of :func:`iter_predictive_probs` at once: ``(num_samples, N, num_classes)``."""
    chunks = list(iter_predictive_probs(model, guide, x, num_samples, **kwargs))
    if not chunks:
        return x.new_empty(num_samples, 0, model.config.num_classes)
    return torch.cat(chunks, dim=1)


def predict_with_abstain(
    model: TrainedBNN,
    images: Any,
    num_samples: int = DEFAULT_RULE.num_samples,
    threshold: float = DEFAULT_RULE.threshold,
    percentile: float = DEFAULT_RULE.percentile,
    *,
    rule: RuleName | None = None,
    alpha: float = DEFAULT_RULE.alpha,
    max_risk: float | None = None,
    delta: float = DEFAULT_RULE.delta,
    method: Method = "local",
    preprocess: Literal["mnist"] | None = None,
    has_ink: Tensor | None = None,
    return_samples: bool = False,
    chunk_size: int | None = None,
    seed: int | None = 0,
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
    rule
        ``"median"``: the reference rule (candidates only). ``"calibrated"``: the same
        candidates behind a gate that refuses unfamiliar inputs, with a false-refusal rate
        on digits like the held-out ones of at most ``alpha``. ``None`` (default): calibrated
        when the model carries a calibration, else median (with a warning).
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
        it first, as MNIST was made (see :mod:`inference.preprocess`): grayscale, inverted when the
        background is light, cropped to the ink, fitted to 20x20 and centred by mass. Images with
        no ink are refused (reason ``NO_INK``).
    has_ink
        ``(N,)`` bool, for images already brought to MNIST's format by
        :func:`inference.preprocess.mnist_format` elsewhere (say, in DataLoader workers): False
        marks those that had no ink, which are refused (reason ``NO_INK``).
    return_samples
        Keep the ``(S, N, C)`` per-network probabilities in the result.
    seed
        Seeds the sampled networks (and the VAE's draws), so that the same input gets the
        same answer; ``None`` uses the global random state.

    Returns
    -------
    AbstainResult
    """
    if not isinstance(model, TrainedBNN):
        raise TypeError(f"model must be a bnn.TrainedBNN (from bnn.load_model), got {type(model).__name__}")
    settings = Rule(num_samples, threshold, percentile, alpha, max_risk, delta)
    rule = _resolve_rule(model, rule, settings)
    if preprocess == "mnist":
        if has_ink is not None:
            raise ValueError("pass has_ink only for images already preprocessed (preprocess=None)")
        images, has_ink = mnist_format_batch(images)
    elif preprocess is not None:
        raise ValueError(f"preprocess must be None or 'mnist', got {preprocess!r}")
    x = to_batch(images, expected_dim=model.model.config.input_dim).to(model.device)
    parts: dict[str, list[Tensor]] = {k: [] for k in ("level", "mean", "entropy", "mi", "samples")}
    for probs in iter_predictive_probs(model.model, model.guide, x, num_samples, method, chunk_size, seed):
        mean = probs.mean(0)
        values = (percentile_levels(probs, percentile), mean, entropy(mean), mutual_information(probs), probs)
        for key, value in zip(parts, values, strict=True):
            if key != "samples" or return_samples:
                parts[key].append(value.cpu())
    level, entropies = torch.cat(parts["level"]), torch.cat(parts["entropy"])
    prediction, candidates = answer(level, threshold)
    reason = torch.where(prediction == ABSTAIN, NO_CANDIDATE, ANSWERED)
    p_value = density = None
    if rule == "calibrated":
        calibration = model.calibration
        assert calibration is not None  # checked by _resolve_rule
        density = vae_elbo(calibration.vae, x, calibration.vae_particles, seed).cpu()
        held_out = conformal.gate_scores(calibration)
        p_value = conformal.unfamiliarity_p_value(held_out, {"entropy": entropies, "density": density})
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
        mean_probs=torch.cat(parts["mean"]),
        entropy=entropies,
        mutual_information=torch.cat(parts["mi"]),
        rule=rule,
        threshold=float(threshold),
        percentile=float(percentile),
        alpha=float(alpha) if rule == "calibrated" else None,
        p_value=p_value,
        density=density,
        samples=torch.cat(parts["samples"], dim=1) if return_samples else None,
        images=x.cpu() if preprocess == "mnist" else None,
    )


def _resolve_rule(model: TrainedBNN, rule: RuleName | None, settings: Rule) -> RuleName:
    calibration = model.calibration
    if rule is None:
        if calibration is None:
            warnings.warn(
                "this model carries no calibration, so the reference median rule decides alone; "
                "calibrate it with inference.calibrate(model, held_out_digits, training_digits) to refuse unfamiliar "
                "inputs with a guaranteed false-refusal rate",
                stacklevel=3,
            )
            return "median"
        rule = "calibrated"
    if rule not in ("median", "calibrated"):
        raise ValueError(f"rule must be 'median', 'calibrated' or None, got {rule!r}")
    if rule == "median":
        if settings.max_risk is not None:
            raise ValueError("max_risk applies to the calibrated rule only; pass rule='calibrated'")
        return rule
    if calibration is None:
        raise ValueError(
            "rule='calibrated' needs a model with a calibration; this one has none. Calibrate it with "
            "inference.calibrate(model, held_out_digits, training_digits), or use rule='median'"
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
    return rule
