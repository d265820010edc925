"""Calibrating a trained model: fit the density model and score the held-out digits (:func:`calibrate`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from bnn import Calibration, TrainedBNN, VAEConfig
from bnn.config import check_fields, option
from inference.calibration.density import density_scores, train_vae
from inference.data import ImageSet
from inference.posterior import SCORING_SEED, summarise
from inference.rng import forked_rng
from inference.training.contrast import pen_strokes
from inference.training.glyphs import written_glyphs


@dataclass(frozen=True)
class CalibrationConfig:
    """How the calibration is made; every field is also a command-line flag."""

    held_out: int = option(5000, "nonnegative_int", "training images held out to calibrate the rule (0: no calibration)")
    vae_epochs: int = option(20, "positive_int", "epochs of the VAE whose ELBO is the gate's density")
    vae_particles: int = option(8, "positive_int", "importance samples per image of the VAE's ELBO")
    vae_hidden_dim: int = option(800, "positive_int", "hidden units of the VAE's encoder and decoder")
    vae_latent_dim: int = option(20, "positive_int", "latent dimensions of the VAE")
    class_density: bool = option(
        True, "bool", "score the density under the class the rule would answer (a VAE conditioned on the digit)"
    )
    density_wide_pen: float = option(0.5, "unit", "share of the density model's training digits drawn with a wider pen")
    fisher_combination: bool = option(
        True,
        "bool",
        "combine the gate's p-values by Fisher's statistic, ranked among the held-out digits' (else Bonferroni)",
    )
    class_doubt: bool = option(
        True,
        "bool",
        "add the class doubt to the gate (with class_density): -log p(answered class | x), the density as a classifier",
    )
    character_class: bool = option(
        True,
        "bool",
        "train the density model on written characters too, as one more class, which the class doubt weighs each digit against",
    )
    every_character: bool = option(
        False,
        "bool",
        "the characters' class holds every typeset character once, not as many random draws as a digit class holds",
    )
    stroke_class: bool = option(
        False,
        "bool",
        "give the density model one more class, random pen strokes (marks made from nothing), for the class doubt to weigh",
    )
    character_clusters: int = option(
        1, "positive_int", "split the written characters into this many classes of the density model, by k-means on pixels"
    )

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def with_class_doubt(self) -> bool:
        """Whether the gate scores the class doubt: asked for, and the density conditioned on the class."""
        return self.class_doubt and self.class_density

    @property
    def with_character_class(self) -> bool:
        """Whether the density model has a class of written characters: asked for, and the class doubt in the gate."""
        return self.character_class and self.with_class_doubt

    @property
    def with_stroke_class(self) -> bool:
        """Whether the density model has a class of random pen strokes: asked for, and the class doubt in the gate."""
        return self.stroke_class and self.with_class_doubt

    @property
    def gate_components(self) -> int:
        """How many scores the gate combines: the entropy, the density, and the class doubt where it applies."""
        return 2 + self.with_class_doubt

    def vae_config(self, num_classes: int, deskew: bool = False) -> VAEConfig:
        """The density model's widths, conditioned on the classifier's ``num_classes`` classes when ``class_density``
        (``character_clusters`` more for the written characters, :attr:`with_character_class`, and one for the pen
        strokes, :attr:`with_stroke_class`; ``num_classes`` 0 asks for an unconditional model); ``deskew`` as the
        classifier's (:attr:`bnn.BNNConfig.deskew`), so that the density models the images the classifier reads."""
        conditional = self.class_density and num_classes > 0
        characters = self.character_clusters if self.with_character_class else 0
        return VAEConfig(
            hidden_dim=self.vae_hidden_dim,
            latent_dim=self.vae_latent_dim,
            num_classes=num_classes + characters + self.with_stroke_class if conditional else 0,
            deskew=deskew,
        )


def with_characters(digits: ImageSet, num_classes: int, seed: int, every_character: bool = False, clusters: int = 1) -> ImageSet:
    """``digits`` (labels below ``num_classes``) and, as one more class labelled ``num_classes``, as many written
    characters as a digit class holds on average (:func:`inference.training.glyphs.written_glyphs`, drawn once with
    ``seed``), or with ``every_character`` each typeset character once: the density model's data under
    :attr:`CalibrationConfig.character_class`. With ``clusters`` > 1 the characters are that many classes, labelled
    from ``num_classes`` on by k-means on their pixels (:attr:`CalibrationConfig.character_clusters`)."""
    with forked_rng(digits.images.device, seed):
        characters = written_glyphs(None if every_character else len(digits) // num_classes, digits.images.device)
    labels: int | Tensor = num_classes
    if clusters > 1:
        from sklearn.cluster import KMeans  # only for this option

        found = KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit_predict(characters.cpu().double().numpy())
        labels = num_classes + torch.from_numpy(found).to(digits.labels.dtype)
    return _with_class(digits, characters, labels, "written characters")


def with_strokes(data: ImageSet, n: int, label: int, seed: int) -> ImageSet:
    """``data`` and, as one more class labelled ``label``, ``n`` random pen strokes (as many as a digit class holds;
    :func:`inference.training.contrast.pen_strokes`: 2-3 strokes with MNIST's pen, drawn once with ``seed``): the
    density model's data under :attr:`CalibrationConfig.stroke_class`."""
    with forked_rng(data.images.device, seed + 1):  # not the characters' draws
        strokes = pen_strokes(n, data.images.device)
    return _with_class(data, strokes, label, "pen strokes")


def _with_class(data: ImageSet, images: Tensor, label: int | Tensor, what: str) -> ImageSet:
    """``data`` and ``images`` ``(n, 784)`` (on ``data``'s device), labelled ``label``: one more class, or one
    ``(n,)`` label per image."""
    if isinstance(label, Tensor):
        extra = label.to(data.labels.device)
    else:
        extra = torch.full((len(images),), label, dtype=data.labels.dtype, device=data.labels.device)
    return ImageSet(f"{data.name} and {what}", torch.cat([data.images, images]), torch.cat([data.labels, extra]))


def held_out_size(num_images: int, requested: int) -> int:
    """How many of ``num_images`` training images a quick run holds out: a tenth, but at least 1,000 (with fewer,
    the gate's p-values grow coarse at the alphas in use: :func:`smallest_gate_p_value`), at most half, and
    never more than ``requested``."""
    return min(requested, max(num_images // 10, 1000), num_images // 2)


def smallest_gate_p_value(n: int, fisher_combination: bool = False, components: int = 2) -> float:
    """The smallest p-value the gate can give with ``n`` held-out digits: under Bonferroni over ``components`` scores
    the two-sided density's ``components * 2 / (n + 1)``; under Fisher's combination ``1 / (n + 1)``."""
    if fisher_combination:
        return 1.0 / (n + 1)
    return min(1.0, 2 * components / (n + 1))


def calibrate(
    trained: TrainedBNN,
    held_out: ImageSet,
    training: ImageSet,
    config: CalibrationConfig | None = None,
    *,
    num_samples: int = 100,
    percentile: float = 50.0,
    split_seed: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> Calibration:
    """Fit the density model on ``training`` and score ``held_out``; attach the calibration to ``trained`` and return it.

    ``held_out`` must be digits that neither the network nor the VAE was trained on, drawn
    from the distribution the guarantee is for (:func:`inference.data.split_calibration`).
    ``num_samples`` and ``percentile`` must be those the predictions will use. ``seed`` seeds the density's training;
    the held-out digits are scored with :data:`~inference.posterior.SCORING_SEED`, the seed predictions score with
    by default, so that the two are scored by one function (the networks' and the density's draws).
    """
    config = config or CalibrationConfig(held_out=len(held_out))
    if len(held_out) < 1 or (held_out.labels < 0).any():
        raise ValueError("held_out must hold at least one labelled image")
    smallest = smallest_gate_p_value(len(held_out), config.fisher_combination, config.gate_components)
    if smallest > 0.01:
        warnings.warn(
            f"with {len(held_out)} held-out digits the gate's p-values are at least {smallest:.3f}: "
            f"at alpha below that, the {'gate' if config.fisher_combination else 'density'} can refuse nothing. "
            "Hold out at least 1,000 digits.",
            stacklevel=2,
        )
    device = trained.device
    num_classes = trained.model.config.num_classes
    vae_config = config.vae_config(num_classes, trained.model.config.deskew)
    on_device = ImageSet(training.name, training.images.to(device), training.labels)
    per_class = len(on_device) // num_classes
    if config.with_character_class:
        on_device = with_characters(on_device, num_classes, seed, config.every_character, config.character_clusters)
    if config.with_stroke_class:
        on_device = with_strokes(on_device, per_class, vae_config.num_classes - 1, seed)  # the last class
    vae = train_vae(
        on_device, config.vae_epochs, seed=seed, progress=progress, config=vae_config, wide_pen=config.density_wide_pen
    )
    result = summarise(trained, held_out.images.to(device), num_samples, percentile, seed=SCORING_SEED)
    # Scored under the class the rule would answer, as a new input is (a function of the input: the p-values stay valid).
    answered_class = result.percentile_probs.argmax(-1)
    scores = density_scores(
        vae, held_out.images.to(device), answered_class, config.vae_particles, SCORING_SEED, config.with_class_doubt
    )
    trained.calibration = Calibration(
        entropy=result.entropy,
        mutual_information=result.mutual_information,
        density=scores["density"],
        percentile_probs=result.percentile_probs,
        labels=held_out.labels.clone(),
        vae=vae,
        num_samples=num_samples,
        percentile=float(percentile),
        vae_particles=config.vae_particles,
        split_size=len(held_out),
        split_seed=split_seed,
        fisher_combination=config.fisher_combination,
        class_doubt=scores.get("class_doubt"),
    )
    trained.calibration.validate()
    return trained.calibration
