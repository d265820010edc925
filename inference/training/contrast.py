"""Inputs that no digit looks like, for the noise-contrastive prior, made from training digits or from nothing.

Far from the digits, each digit of a batch becomes one of: its pixels in a random order (the same ink,
no shape), its 7x7 blocks in a random order (strokes, but no digit), or the digit under heavy Gaussian
noise (clipped to [0, 1]). Near the digits, where handwriting that is not a digit lies: a digit warped
past recognition (its strokes, bent into no digit), two digits of different classes drawn over each
other a few pixels apart, or random pen strokes drawn from nothing with MNIST's pen width; each is
fitted to MNIST's 20x20 box and centred by mass, as a user's drawing is. Nothing here comes from an evaluation set.

Every contrast input comes with its *digit share*: 0 for all of the above, whose target is the uniform answer.
A written character cut into a digit (:func:`cut_into_digits`, Mixture Outlier Exposure) keeps part of the digit,
and its target keeps that share of the digit's class (:func:`contrast_targets`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bnn import TrainedBNN
from inference.training.augment import elastic_field, gaussian_smoothing, grid_from, normalize_box, resample
from inference.training.config import TrainConfig
from inference.training.glyphs import glyph_bank, stroke_glyph_bank, written_glyphs

BLOCK = 7
SIDE = 28


def permute_pixels(x: Tensor) -> Tensor:
    """``(B, 784)`` -> each image's pixels in its own random order."""
    order = torch.rand(x.shape, device=x.device).argsort(-1)
    return x.gather(-1, order)


def shuffle_blocks(x: Tensor) -> Tensor:
    """``(B, 784)`` -> each image's 16 blocks of 7x7 pixels in its own random order."""
    per_side = SIDE // BLOCK
    blocks = x.reshape(-1, per_side, BLOCK, per_side, BLOCK).permute(0, 1, 3, 2, 4).reshape(x.shape[0], per_side**2, -1)
    order = torch.rand(x.shape[0], per_side**2, device=x.device).argsort(-1)
    shuffled = blocks.gather(1, order[..., None].expand_as(blocks))
    return shuffled.reshape(-1, per_side, per_side, BLOCK, BLOCK).permute(0, 1, 3, 2, 4).reshape(x.shape)


def heavy_noise(x: Tensor, low: float = 0.3, high: float = 1.0) -> Tensor:
    """``(B, 784)`` -> each image plus Gaussian noise of a standard deviation drawn in [low, high], clipped to [0, 1]."""
    scale = torch.empty(x.shape[0], 1, device=x.device).uniform_(low, high)
    return (x + scale * torch.randn_like(x)).clamp_(0.0, 1.0)


# --- near the digits: handwriting-like inputs that are no digit --------------------------------------------------

#: A digit warped this hard (an elastic field of alpha pixels, smoothed over sigma) keeps its strokes and loses its shape.
WARP = {"alpha": 50.0, "sigma": 3.0}


def warp_past_recognition(x: Tensor) -> Tensor:
    """``(B, 784)`` -> each digit under a strong elastic field: the pen's strokes, bent into no digit."""
    identity = torch.eye(2, 3, device=x.device).expand(x.shape[0], 2, 3)
    return normalize_box(resample(x, grid_from(identity) + elastic_field(x.shape[0], x.device, **WARP)))


#: How far apart two overlaid digits sit (pixels): enough that they cross rather than nest into one digit's shape.
OVERLAY_OFFSET = (4.0, 7.0)


def overlay_pairs(x: Tensor, y: Tensor) -> Tensor:
    """``(B, 784)`` digits, ``(B,)`` labels -> two digits of different classes (where the batch allows) drawn over
    each other a few pixels apart, fitted to the box and centred.

    A 1 is a bar that lies inside most digits' shapes, so an overlay with one often stays a digit: 1s take no part
    (their rows get a pair of other digits), unless the batch holds nothing else.
    """
    n = x.shape[0]
    pool = torch.nonzero(y != 1).squeeze(1)
    if len(pool) < 2:
        pool = torch.arange(n, device=x.device)
    pool = pool[y[pool].argsort()]  # labels sorted, then paired half the pool apart: mostly other classes
    rank = torch.full((n,), -1, dtype=torch.long, device=x.device)
    rank[pool] = torch.arange(len(pool), device=x.device)
    rank = torch.where(rank >= 0, rank, torch.randint(len(pool), (n,), device=x.device))
    first, second = pool[rank], pool[(rank + len(pool) // 2) % len(pool)]
    angle = torch.rand(n, device=x.device) * (2 * math.pi)
    offset = torch.empty(n, device=x.device).uniform_(*OVERLAY_OFFSET) * (2 / SIDE)  # in grid units
    theta = torch.eye(2, 3, device=x.device).repeat(n, 1, 1)
    theta[:, 0, 2], theta[:, 1, 2] = offset * angle.cos(), offset * angle.sin()
    return normalize_box(torch.maximum(x[first], resample(x[second], grid_from(theta))))


#: The pen of :func:`pen_strokes`: a Gaussian of this many pixels, and a gain in this range (then clipped to 1),
#: which draws lines as wide as MNIST's (2.8 pixels at the median, by twice the ink's area over its outline).
PEN_SIGMA, PEN_GAIN = 0.6, (1.5, 2.5)


def pen_strokes(n: int, device: torch.device, strokes: int = 3, points: int = 40) -> Tensor:
    """``(n, 784)`` drawings of 2 or 3 random pen strokes (quadratic Bezier curves), their longest side scaled to
    MNIST's box and drawn with a pen of MNIST's width, centred by mass: scribbles, shapes and letter-like marks,
    made from nothing."""
    control = torch.rand(n, strokes, 3, 2, device=device)  # (n, strokes, 3 control points, xy)
    kept = torch.ones(n, strokes, 1, 1, dtype=torch.bool, device=device)
    kept[torch.rand(n, device=device) < 0.5, -1] = False  # half of them have one stroke fewer
    t = torch.linspace(0, 1, points, device=device)[:, None]
    a, b, c = control[:, :, 0, None], control[:, :, 1, None], control[:, :, 2, None]
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c  # (n, strokes, points, xy)
    # Scaled before drawing (not after, which would widen the pen): longest side 18 pixels, plus the pen about 20.
    low = torch.where(kept, curve, math.inf).amin((1, 2), keepdim=True)
    high = torch.where(kept, curve, -math.inf).amax((1, 2), keepdim=True)
    span = (high - low).amax(-1, keepdim=True).clamp_min(1e-3)
    curve = (curve - (low + high) / 2) / span * 18 + (SIDE - 1) / 2
    curve = torch.where(kept, curve, -100.0).reshape(n, -1, 2)  # dropped strokes land off the frame
    # Splat every point of the curves bilinearly, then draw the line by smoothing.
    ink = torch.zeros(n, (SIDE + 2) ** 2, device=device)
    base = curve.floor()
    for dx in (0, 1):
        for dy in (0, 1):
            corner = base + torch.tensor([dx, dy], device=device)
            weight = (1 - (curve - corner).abs()).prod(-1)
            inside = ((corner >= 0) & (corner < SIDE)).all(-1)
            index = (corner[..., 1] + 1) * (SIDE + 2) + corner[..., 0] + 1
            ink.scatter_add_(1, torch.where(inside, index, 0).long(), weight * inside)
    ink = ink.view(n, SIDE + 2, SIDE + 2)[:, 1:-1, 1:-1].clamp_max(1.0)
    smooth = gaussian_smoothing(PEN_SIGMA, device)
    drawn = (smooth @ ink @ smooth.T) * torch.empty(n, 1, 1, device=device).uniform_(*PEN_GAIN)
    return normalize_box(drawn.clamp(0.0, 1.0).reshape(n, -1))


def random_boxes(n: int, device: torch.device) -> Tensor:
    """``(n, 784)`` masks, each a box covering a share ``1 - lambda`` of the 28x28 frame, ``lambda ~ U(0, 1)``
    (Beta(1, 1)), centred anywhere on the frame and clipped at its edges: CutMix's boxes, as MixOE draws them."""
    side = (SIDE * (1 - torch.rand(n, device=device)).sqrt()).floor()
    centre = torch.randint(SIDE, (n, 2), device=device)
    low = (centre - (side // 2)[:, None]).clamp(0, SIDE)
    high = (centre + (side // 2)[:, None]).clamp(0, SIDE)
    pixel = torch.arange(SIDE, device=device)
    rows = (pixel >= low[:, :1]) & (pixel < high[:, :1])  # (n, 28)
    columns = (pixel >= low[:, 1:]) & (pixel < high[:, 1:])
    return (rows[:, :, None] & columns[:, None, :]).reshape(n, -1)


def paste(characters: Tensor, x: Tensor, inside: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, 784)`` characters pasted over ``(B, 784)`` digits where ``inside`` ``(B, 784)`` is true -> ``(B, 784)``
    the results and ``(B,)`` the digit's share of each: the lesser of the share of the digit's ink that remains and
    the digit's share of the ink drawn.

    The share is counted in ink, not (as MixOE counts it) in the box's area, because MNIST's borders are blank: a
    box over the border takes nothing from the digit (1), a blank corner over half the digit leaves half a digit
    (1/2), and strokes added beside a whole digit count too (``D / (D + G)``).
    """
    mixed = torch.where(inside, characters, x)
    kept = (x * ~inside).sum(-1)
    share = torch.minimum(kept / x.sum(-1).clamp_min(1e-6), kept / mixed.sum(-1).clamp_min(1e-6))
    return mixed, share.clamp(0.0, 1.0)


def cut_into_digits(characters: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, 784)`` characters and ``(B, 784)`` digits -> ``(B, 784)`` each digit with a box of its character pasted
    over it (:func:`random_boxes`, :func:`paste`), fitted to the box and centred, and ``(B,)`` the digit's share.

    Mixture Outlier Exposure's CutMix (Zhang et al. 2023), which mixes inliers with outliers so that training covers
    the region between them, where pure outliers leave a gap.
    """
    mixed, share = paste(characters, x, random_boxes(x.shape[0], x.device))
    return normalize_box(mixed), share


def written_contrast(
    x: Tensor,
    stroke_glyphs: float = 0.0,
    mix: float = 0.0,
    same_shape_case: bool = False,
    character_weights: Tensor | None = None,
    wide_pen: float = TrainConfig.glyph_wide_pen,
) -> tuple[Tensor, Tensor]:
    """``(B, 784)`` digits -> ``(B, 784)`` written characters (:func:`inference.training.glyphs.written_glyphs`, drawn
    with ``character_weights``, a share ``wide_pen`` with a wider pen), a share ``mix`` of them cut into their row's
    digit (:func:`cut_into_digits`), and ``(B,)`` their digit shares."""
    characters = written_glyphs(
        x.shape[0], x.device, stroke_glyphs, same_shape_case, weights=character_weights, wide_pen=wide_pen
    )
    share = x.new_zeros(x.shape[0])
    if mix > 0:
        cut = torch.rand(x.shape[0], device=x.device) < mix
        if cut.any():
            characters[cut], share[cut] = cut_into_digits(characters[cut], x[cut])
    return characters, share


def contrast_targets(labels: Tensor, digit_share: Tensor, num_classes: int) -> Tensor:
    """``(B,)`` labels and ``(B,)`` digit shares ``s`` -> ``(B, num_classes)`` targets ``s onehot(y) + (1 - s) / C``."""
    onehot = torch.nn.functional.one_hot(labels, num_classes).to(digit_share.dtype)
    return digit_share[:, None] * onehot + (1 - digit_share[:, None]) / num_classes


#: Far from the digits: corruptions of a digit alone.
CORRUPTIONS = (permute_pixels, shuffle_blocks, heavy_noise)
#: Near the digits: ``(digits, labels) -> non-digits``.
NEAR = (
    lambda x, y: warp_past_recognition(x),
    overlay_pairs,
    lambda x, y: pen_strokes(x.shape[0], x.device),
)


def contrast_inputs(
    x: Tensor,
    y: Tensor | None = None,
    near: float = 0.0,
    glyphs: float = 0.0,
    stroke_glyphs: float = 0.0,
    glyph_mix: float = 0.0,
    same_shape_case: bool = False,
    character_weights: Tensor | None = None,
    glyph_wide_pen: float = TrainConfig.glyph_wide_pen,
) -> tuple[Tensor, Tensor]:
    """``(B, 784)`` digits (and their ``(B,)`` labels) -> ``(B, 784)`` non-digits and ``(B,)`` their digit shares.

    Each is made by one corruption drawn at random: a written character that is no digit (:func:`written_contrast`)
    with probability ``glyphs`` (a share ``stroke_glyphs`` of them drawn from pen strokes, a share ``glyph_mix`` cut
    into their digit; ``same_shape_case`` as :func:`inference.training.glyphs.digit_lookalikes` says; the typeset
    ones drawn in proportion to ``character_weights`` where given; a share ``glyph_wide_pen`` with a wider pen), else a near
    one (:data:`NEAR`) with probability ``near``, else a far one (:data:`CORRUPTIONS`). The digit share is 0 except
    where a character was cut into a digit."""
    if near > 0 and y is None:
        raise ValueError("near-digit contrast inputs need the digits' labels")
    kinds = [lambda x, y, c=c: c(x) for c in CORRUPTIONS] + list(NEAR)
    far = torch.randint(len(CORRUPTIONS), (x.shape[0],), device=x.device)
    close = torch.randint(len(NEAR), (x.shape[0],), device=x.device) + len(CORRUPTIONS)
    which = torch.where(torch.rand(x.shape[0], device=x.device) < near, close, far)
    if glyphs > 0:
        which = torch.where(torch.rand(x.shape[0], device=x.device) < glyphs, len(kinds), which)
    out, share = torch.empty_like(x), x.new_zeros(x.shape[0])
    for k, corrupt in enumerate(kinds):
        chosen = which == k
        if chosen.any():
            out[chosen] = corrupt(x[chosen], None if y is None else y[chosen])
    written = which == len(kinds)
    if written.any():
        out[written], share[written] = written_contrast(
            x[written], stroke_glyphs, glyph_mix, same_shape_case, character_weights, glyph_wide_pen
        )
    return out, share


def confident_neighbours(contrast: Tensor, trained: TrainedBNN, share: float, radius: float) -> Tensor:
    """``(B', 784)`` contrast inputs with their last ``share`` moved to where the network is surest of a digit: one
    signed-gradient step of size ``radius`` (an L-infinity ball) up the posterior-mean network's largest log-probability,
    clipped to [0, 1]. Adversarial confidence enhancing training (ACET, Hein, Andriushchenko & Bitterwolf 2019) asks for
    the uniform answer there too, so that low confidence holds in a neighbourhood of each input, not only at it; the
    rest stay as made. The weights are not differentiated, only the inputs. An option: in the near-digit study it
    refused more thick-pen digits and answered more mirrored ones (``docs/design.md``)."""
    moved = round(share * contrast.shape[0])
    if moved == 0:
        return contrast
    params = {site: loc.detach()[None] for site, loc in trained.guide.locs().items()}
    with torch.enable_grad():
        x = contrast[-moved:].detach().requires_grad_(True)
        confidence = trained.model.sampled_logits(x, params)[0].log_softmax(-1).amax(-1).sum()
        (gradient,) = torch.autograd.grad(confidence, x)
    return torch.cat([contrast[:-moved], (x.detach() + radius * gradient.sign()).clamp_(0.0, 1.0)])


def prepare_contrast(config: TrainConfig) -> None:
    """Make the banks of written characters that ``config``'s contrast inputs draw from (once per process, 5-13 s on 2
    cores), as a dataset is loaded before training: so that an epoch's time is the training's, and the first step
    does not stall."""
    if config.contrast_weight and config.glyph_contrast:
        glyph_bank(config.same_shape_case)
        if config.stroke_glyphs:
            stroke_glyph_bank(config.same_shape_case)


def glyph_weights(trained: TrainedBNN, config: TrainConfig) -> Tensor | None:
    """``(N,)``: how strongly the network reads each of the ``N`` typeset characters (:func:`glyph_bank`) as a digit,
    its mean network's highest class probability on the undistorted image, in (1/C, 1]; or None (uniform draws) unless
    ``config.mine_glyphs`` and the contrast inputs include written characters.

    Outlier mining (Chen et al. 2021, "ATOM"): most characters are refused early and then teach little, so each epoch
    draws them in proportion to these weights, computed at its start (0.2 s on 2 cores for 10,384 characters).
    """
    if not (config.mine_glyphs and config.contrast_weight and config.glyph_contrast):
        return None
    return trained.mean_logits(glyph_bank(config.same_shape_case)).softmax(-1).amax(-1).cpu()


def contrast_batch(
    x: Tensor, y: Tensor, config: TrainConfig, num_classes: int, character_weights: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """The contrast inputs of a training minibatch (``(B, 784)`` digits, ``(B,)`` labels): its first quarter made
    into non-digits of the kinds ``config`` asks for (``near_contrast``, ``glyph_contrast``, ``stroke_glyphs``,
    ``glyph_mix``, ``same_shape_case``; the typeset characters drawn with ``character_weights``, from :func:`glyph_weights`),
    and their ``(B', num_classes)`` targets (:func:`contrast_targets`), or None,
    the uniform answer for every one, unless ``glyph_mix`` cut characters into digits (the same loss, and bit for bit,
    without them). A quarter is enough: the likelihood plate scales their factor to the data size either way."""
    quarter = max(1, x.shape[0] // 4)
    made, share = contrast_inputs(
        x[:quarter],
        y[:quarter],
        near=config.near_contrast,
        glyphs=config.glyph_contrast,
        stroke_glyphs=config.stroke_glyphs,
        glyph_mix=config.glyph_mix,
        same_shape_case=config.same_shape_case,
        character_weights=character_weights,
        glyph_wide_pen=config.glyph_wide_pen,
    )
    return made, contrast_targets(y[:quarter], share, num_classes) if config.glyph_mix else None
