"""How to fit the guide: :class:`TrainConfig`, every field of which is a flag of ``bnn-abstain train``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from bnn.config import check_fields, option


@dataclass(frozen=True)
class TrainConfig:
    """How to fit the guide. Every field is a flag of the training command.

    Parameters
    ----------
    epochs
        Passes over the training set.
    batch_size
        Minibatch size.
    lr
        Adam's learning rate for the means.
    scale_lr
        Adam's learning rate for the (softplus-parameterised) standard deviations, which must travel
        from ``init_scale`` to their final size within the run. Adam moves each one by about this much
        per step whatever its gradient's size, so a larger rate overshoots where the data holds it.
    kl_weight
        Weight of the KL term: the loss is ``kl_weight * KL(q || p) - E_q[log p(y | x, w)]``.
        1 is the true ELBO; below 1 tempers the posterior (as if every example were
        seen ``1 / kl_weight`` times). Weights the data never inform still relax to
        the prior either way, which is what makes the network doubt unfamiliar inputs.
    local_reparam
        Sample pre-activations instead of weights during training (lower variance, same ELBO). Off by default: one
        weight sample per step takes half the matrix products, and with the written characters it scored better
        on the near-digit study's criterion (``docs/design.md``).
    bf16_variance
        With ``local_reparam``, compute the pre-activations' variance (``x**2 @ scale**2``, half of the
        matrix products) in bfloat16 where the device has native bf16 units (:func:`inference.training.step.has_bf16_units`);
        elsewhere, and for the means, float32. The variance only sizes the noise; its rounding is far below the Monte Carlo error.
        No effect with ``BNNConfig.row_column_scales``, whose variance is a matrix-vector product.
    shift
        Move each training digit by a random offset of up to this many pixels in x and y
        (:func:`inference.training.augment.random_shift`), a prior that a digit's class does not depend on where it sits.
    distort
        Strength of the label-preserving distortions of every training digit: a random small affine map
        (rotation, scale, shear, shift) and an elastic field (:func:`inference.training.augment.random_distortion`;
        1 is Simard et al.'s strength, 0 is off).
    wide_pen
        The share of training digits drawn with a pen one pixel wider (:func:`inference.training.augment.wider_pen`),
        as a share ``glyph_wide_pen`` of the written characters may be: otherwise a wide pen is a trait of the contrast
        inputs alone.
    cosine_lr
        Multiply both learning rates by ``(1 + cos(pi * step / total_steps)) / 2`` (computed from the
        step, so a resumed run follows the same schedule).
    contrast_weight
        Weight of the noise-contrastive prior: a quarter of every minibatch's digits are also corrupted
        beyond recognition (:mod:`inference.training.contrast`) and the sampled network is asked to predict the
        uniform distribution on them, with this weight per input (0: off).
    near_contrast
        The share of those inputs made near the digits (warped digits, overlaid digits, random pen strokes)
        rather than far from them (shuffled pixels and blocks, heavy noise).
    glyph_contrast
        The share of those inputs that are typeset letters, symbols and shapes that are no digit, distorted as if
        written (:mod:`inference.training.glyphs`: outlier exposure with an auxiliary set); the rest are made as
        ``near_contrast`` says.
    stroke_glyphs
        The share of those written characters drawn from pen strokes (Hershey's single-stroke fonts) rather than
        filled from font outlines (:func:`inference.training.glyphs.written_glyphs`).
    glyph_wide_pen
        The share of those written characters drawn with a pen one pixel wider (:func:`inference.training.augment.wider_pen`),
        as if written with a broad pen. 0 by default: no training digit is (unless ``wide_pen``), so a wide pen would be
        a trait of the characters alone, and the network learned to refuse thick digits by it (``docs/design.md``).
    glyph_mix
        The share of those written characters cut into a training digit (Mixture Outlier Exposure's CutMix, Zhang et al.
        2023: :func:`inference.training.contrast.cut_into_digits`), whose target keeps the digit's class in proportion to
        the digit's share of the ink and is uniform for the rest: inputs between the digits and the characters.
    same_shape_case
        Leave a letter's other case out of the written characters as a digit look-alike only where both cases are the
        same shape (``o`` with ``O``, but not ``L`` with ``l``; :func:`inference.training.glyphs.digit_lookalikes`).
    mine_glyphs
        Draw each epoch's typeset characters in proportion to the mean network's highest class probability on them at
        the epoch's start, not uniformly: outlier mining (Chen et al. 2021), so that the characters the network still
        reads as digits are shown more often (:func:`inference.training.contrast.glyph_weights`).
    adversarial_contrast
        The share of the contrast inputs moved, within ``adversarial_radius`` of where they were made (an L-infinity
        ball), to where the posterior-mean network is surest of a digit, still with the uniform target (ACET, Hein et
        al. 2019: :func:`inference.training.contrast.confident_neighbours`; 0: off).
    adversarial_radius
        How far each pixel of those inputs may move.
    distill
        The share of each training digit's label taken from a convolutional teacher's softened probabilities
        (knowledge distillation: :mod:`inference.training.teacher`), the rest its hard label (0: off, no teacher).
    distill_temperature
        The temperature that softens the teacher's probabilities.
    teacher_epochs
        Epochs of the teacher's training, on the same training digits, before the BNN's.
    seed
        Seeds the initialisation, the shuffling and every Monte Carlo draw.
    checkpoint_every
        Also write the checkpoint every this many steps (0: only at epoch ends).
    """

    epochs: int = option(30, "positive_int", "passes over the training set")
    batch_size: int = option(1024, "positive_int", "minibatch size")
    lr: float = option(2e-3, "positive", "Adam learning rate of the means")
    scale_lr: float = option(5e-3, "positive", "Adam learning rate of the standard deviations")
    kl_weight: float = option(0.1, "positive", "weight of the KL term; 1 is the plain ELBO")
    local_reparam: bool = option(False, "bool", "use the local reparameterisation (sample pre-activations, not weights)")
    bf16_variance: bool = option(
        True, "bool", "with local_reparam: the pre-activations' variance in bfloat16 where the device has bf16 units"
    )
    contrast_weight: float = option(
        0.3, "nonnegative", "weight of the noise-contrastive prior: uncertainty demanded on corrupted digits (0: off)"
    )
    near_contrast: float = option(0.0, "unit", "share of the contrast inputs made near the digits (strokes, warps, overlays)")
    glyph_contrast: float = option(0.25, "unit", "share of the contrast inputs that are written characters that are no digit")
    stroke_glyphs: float = option(0.0, "unit", "share of the written characters drawn from pen strokes, not font outlines")
    glyph_wide_pen: float = option(0.0, "unit", "share of the written characters drawn with a pen one pixel wider")
    glyph_mix: float = option(0.0, "unit", "share of the written characters cut into a digit (target partly its class)")
    same_shape_case: bool = option(
        False, "bool", "leave a look-alike's other case out of the written characters only where it is the same shape"
    )
    mine_glyphs: bool = option(
        False, "bool", "draw the typeset characters each epoch in proportion to the network's confidence on them"
    )
    distort: float = option(0.0, "nonnegative", "strength of the affine and elastic distortions of training digits (0: off)")
    wide_pen: float = option(0.0, "unit", "share of training digits drawn with a pen one pixel wider")
    cosine_lr: bool = option(False, "bool", "decay both learning rates to 0 along a cosine over the run")
    shift: int = option(0, "nonnegative_int", "move each training digit by up to this many pixels (0: off)")
    adversarial_contrast: float = option(
        0.0, "unit", "share of the contrast inputs moved to where the network is surest of a digit (ACET; 0: off)"
    )
    adversarial_radius: float = option(0.3, "unit", "how far (L-infinity) those contrast inputs may move")
    distill: float = option(0.0, "unit", "share of each digit's label from a CNN teacher's soft probabilities (0: off)")
    distill_temperature: float = option(4.0, "positive", "temperature of the teacher's soft probabilities")
    teacher_epochs: int = option(3, "positive_int", "epochs of the distillation teacher's training")
    seed: int = option(0, "int", "random seed")
    checkpoint_every: int = option(200, "nonnegative_int", "also checkpoint every N steps, 0 for epoch ends only")

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The configuration ``data`` records; fields that older checkpoints lack take their value of then (off)."""
        return cls(**(ADDED_SINCE_V1 | {f.name: data[f.name] for f in fields(cls) if f.name in data}))


#: Fields added after the first checkpoints, with the value that reproduces what those checkpoints were trained with.
ADDED_SINCE_V1 = {
    "near_contrast": 0.0,
    "glyph_contrast": 0.0,
    "stroke_glyphs": 0.0,
    "distort": 0.0,
    "bf16_variance": False,
    "wide_pen": 0.0,
    "glyph_mix": 0.0,
    "same_shape_case": False,
    "mine_glyphs": False,
    "distill": 0.0,
    "adversarial_contrast": 0.0,
}
