"""Characters that are no digit, drawn as if by hand: outlier exposure with an auxiliary set made offline.

Outlier exposure (Hendrycks, Mazeika & Dietterich 2019) trains on a large, diverse set of inputs from outside
the task. Here that set is every letter, symbol and punctuation mark of the fonts that matplotlib bundles
(DejaVu Sans, DejaVu Serif, STIX: Latin, Greek, Cyrillic, Armenian, Georgian and Hebrew letters, arrows,
shapes and mathematical signs), less the characters that look like a digit: Unicode's digits, every
character Unicode's confusables (UTS #39, through ``confusable_homoglyphs``) link to one, in either case
(``O`` and ``o`` are a 0 once scaled to MNIST's box; with ``same_shape_case``, only where the two cases are the same
shape, so that ``l`` does not bring in ``L``), and every glyph drawn as a narrow bar (a 1). Each is
put in MNIST's format (:func:`mnist_format`) once per process; a minibatch's draws then go through Simard
et al.'s distortions, so that they look written rather than printed, and (``TrainConfig.glyph_wide_pen``, off by
default) a share of them a wider pen. No evaluation set is read.

A second bank (:func:`stroke_glyph_bank`) holds the same kinds of characters as a pen draws them: Hershey's
single-stroke fonts (Roman simplex, cursive and script simplex, through the ``Hershey-Fonts`` package) give each
character as the lines a pen follows, so it is drawn with MNIST's pen (2.8 pixels wide once the character fills
the 20x20 box) rather than filled from an outline. The same characters are left out.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import unicodedata

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from inference.data.preprocess import DIGIT_BOX, mnist_format
from inference.training.augment import normalize_box, random_distortion, random_wider_pen
from inference.training.config import TrainConfig

#: matplotlib's bundled fonts the bank is drawn from: a sans, a serif and STIX's mathematical and symbol glyphs.
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf")
#: Unicode's general categories kept: letters, symbols, punctuation (numbers, marks, spaces and controls are not).
CATEGORIES = ("L", "S", "P")
#: A glyph whose ink is at most this wide for its height is a bar, which MNIST writes as a 1 whatever character it is
#: (``ı``, ``ι``, ``ʃ``, ``∫``): left out of the bank.
MIN_WIDTH_TO_HEIGHT = 0.4
#: Two cases of a letter are the same shape (:func:`same_shape`) where their images' cosine similarity is at least
#: this: ``O``-``o`` 0.91, ``S``-``s`` 0.92, ``I``-``i`` 0.77 against ``Ε``-``ε`` 0.68, ``e``-``E`` 0.61, ``L``-``l``
#: 0.47 (the best of the three fonts; set between the case pairs the look-alike closure meets, before any training).
SAME_SHAPE_COSINE = 0.75
#: Pixels per em of the rendering, before :func:`mnist_format` scales the ink to MNIST's 20x20 box.
RENDER_SIZE = 64
#: Hershey's fonts drawn by :func:`stroke_glyph_bank`: its single-stroke fonts whose every glyph is the ASCII
#: character of its code, so the digit look-alikes can be left out (its duplex, triplex and gothic fonts draw
#: thickness with parallel lines; its Greek, Cyrillic and symbol fonts put other glyphs at ASCII's codes).
STROKE_FONTS = ("futural", "cursive", "scripts")
#: Hershey's cap height in font units; a mark under half of it (``.``, ``,``, ``'``) has no shape of its own once
#: scaled to MNIST's box, and is left out.
HERSHEY_CAP_HEIGHT = 21

#: The pen, in pixels of MNIST's 20x20 box, before :func:`mnist_format`'s resampling, which widens it to MNIST's
#: 2.8 pixels at the median (twice the ink's area over its outline; 2.7 for this bank).
STROKE_PEN = 2.35
#: Pixels per font unit of the stroke rendering.
STROKE_SCALE = 8.0


def _font_path(name: str) -> str:
    import matplotlib  # only its bundled fonts, and only when a bank is made: importing training stays light

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)


@functools.cache
def _charmap(font: str) -> frozenset[int]:
    """The code points ``font`` (a file name in :data:`FONTS`) has a glyph for."""
    from matplotlib import ft2font

    return frozenset(ft2font.FT2Font(_font_path(font)).get_charmap())


@functools.cache
def _font(name: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_path(name), RENDER_SIZE)


def typeset(char: str, font: str) -> Image.Image:
    """``char`` in ``font`` (a file name in :data:`FONTS`), white on a black canvas of three ems a side, placed at
    its middle em."""
    canvas = Image.new("L", (3 * RENDER_SIZE, 3 * RENDER_SIZE), 0)
    ImageDraw.Draw(canvas).text((RENDER_SIZE, RENDER_SIZE), char, fill=255, font=_font(font))
    return canvas


def render(char: str, font: str) -> tuple[np.ndarray, bool]:
    """``char`` typeset in ``font`` (:func:`typeset`), in MNIST's format: a ``(28, 28)`` float32 image and whether it
    has ink (:func:`inference.data.preprocess.mnist_format`)."""
    canvas = typeset(char, font)
    box = canvas.getbbox()
    if box is not None and min(box[:2]) >= 1 and box[2] < canvas.width and box[3] < canvas.height:
        # The ink with a black frame of one pixel: mnist_format gives the same image as from the whole canvas (its
        # border is black either way) from about an eighth of the pixels. Ink that reaches the edge keeps the canvas.
        canvas = canvas.crop((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1))
    return mnist_format(canvas)


def same_shape(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are drawn alike once scaled to MNIST's box in at least one of :data:`FONTS`: the cosine
    similarity of their images at least :data:`SAME_SHAPE_COSINE`. False where no font draws both."""
    for font in FONTS:
        if ord(a) in _charmap(font) and ord(b) in _charmap(font):
            (x, x_ink), (y, y_ink) = render(a, font), render(b, font)
            if x_ink and y_ink and float((x * y).sum()) >= SAME_SHAPE_COSINE * float(np.linalg.norm(x) * np.linalg.norm(y)):
                return True
    return False


@functools.lru_cache(maxsize=2)
def digit_lookalikes(same_shape_case: bool = False) -> frozenset[str]:
    """The characters that are or look like a digit: those connected to ``0``-``9`` through Unicode's
    confusables and through upper and lower case, which a scale to a fixed box erases.

    With ``same_shape_case``, a case link is followed only where the two cases are the same shape
    (:func:`same_shape`: ``O``-``o``, ``S``-``s``, ``З``-``з``), not where they differ (``l``-``L``, ``e``-``E``).
    """
    source = importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json")
    confusables: dict[str, list[dict[str, str]]] = json.loads(source.read_text(encoding="utf-8"))
    linked: dict[str, set[str]] = {}
    for char, homoglyphs in confusables.items():
        for other in (h["c"] for h in homoglyphs):
            linked.setdefault(char, set()).add(other)
            linked.setdefault(other, set()).add(char)
    found, todo = set(), list("0123456789")
    while todo:
        char = todo.pop()
        if char in found:
            continue
        found.add(char)
        todo.extend(linked.get(char, ()))
        cases = (c for c in (char.lower(), char.upper()) if len(c) == 1 and c != char)
        todo.extend(c for c in cases if not same_shape_case or same_shape(char, c))
    return frozenset(found)


def _allowed(char: str, same_shape_case: bool = False) -> bool:
    """A printable letter, symbol or punctuation mark that is no digit look-alike."""
    return (
        char.isprintable()
        and not char.isspace()
        and unicodedata.category(char)[0] in CATEGORIES
        and char not in digit_lookalikes(same_shape_case)
    )


def glyph_characters(font: str, same_shape_case: bool = False) -> list[str]:
    """The characters of ``font`` (a file name in :data:`FONTS`) that the bank draws: categories in
    :data:`CATEGORIES`, printable, and no digit look-alike (:func:`digit_lookalikes`)."""
    return [c for c in map(chr, sorted(_charmap(font))) if _allowed(c, same_shape_case)]


def _width_to_height(image: np.ndarray, ink: float = 0.2) -> float:
    """The ink's bounding box in a 28x28 image: its width over its height."""
    rows, cols = np.nonzero(image > ink)
    return (np.ptp(cols) + 1) / (np.ptp(rows) + 1)


@functools.lru_cache(maxsize=2)
def glyph_bank(same_shape_case: bool = False) -> Tensor:
    """``(N, 784)`` float32: every character of :func:`glyph_characters` in each of :data:`FONTS`, white on black
    in MNIST's format (10,384 images with matplotlib 3.11's fonts, rendered in about 4 s on 2 cores, once per process)."""
    images = []
    for font in FONTS:
        for char in glyph_characters(font, same_shape_case):
            image, has_ink = render(char, font)
            if has_ink and _width_to_height(image) > MIN_WIDTH_TO_HEIGHT:
                images.append(image)
    return torch.from_numpy(np.stack(images).astype(np.float32)).reshape(len(images), -1)


def draw_strokes(strokes: list[np.ndarray]) -> Image.Image:
    """A character given as pen strokes (each ``(points, 2)``, x right and y down, in font units) drawn white on
    black with round ends and joins, the pen sized so that the character, scaled to fill MNIST's box, has
    :data:`STROKE_PEN`'s width."""
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    pen = STROKE_PEN * (high - low).max() * STROKE_SCALE / (DIGIT_BOX - STROKE_PEN)
    size = np.ceil((high - low) * STROKE_SCALE + 2 * pen).astype(int)
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        line = [tuple(p) for p in (stroke - low) * STROKE_SCALE + pen]
        if len(line) > 1:
            draw.line(line, fill=255, width=round(pen), joint="curve")
        for x, y in (line[0], line[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    return canvas


@functools.lru_cache(maxsize=2)
def stroke_glyph_bank(same_shape_case: bool = False) -> Tensor:
    """``(N, 784)`` float32: every character of :data:`STROKE_FONTS` that :func:`glyph_bank` would keep, drawn with a
    pen by :func:`draw_strokes`, in MNIST's format (180 images, in well under a second)."""
    from HersheyFonts import HersheyFonts  # only when a bank is made

    font, images = HersheyFonts(), []
    for name in STROKE_FONTS:
        font.load_default_font(name)
        for char in sorted(font.all_glyphs):
            if not _allowed(char, same_shape_case):
                continue
            strokes = [np.asarray(s, dtype=np.float64) for s in font.strokes_for_text(char) if len(s)]
            if not strokes or np.ptp(np.concatenate(strokes), 0).max() < HERSHEY_CAP_HEIGHT / 2:
                continue
            image, has_ink = mnist_format(draw_strokes(strokes))
            if has_ink and _width_to_height(image) > MIN_WIDTH_TO_HEIGHT:
                images.append(image)
    return torch.from_numpy(np.stack(images).astype(np.float32)).reshape(len(images), -1)


def written_glyphs(
    n: int | None,
    device: torch.device,
    strokes: float = 0.0,
    same_shape_case: bool = False,
    weights: Tensor | None = None,
    wide_pen: float = TrainConfig.glyph_wide_pen,
) -> Tensor:
    """``(n, 784)`` characters drawn at random from :func:`stroke_glyph_bank` with probability ``strokes``, else
    from :func:`glyph_bank` (both with ``same_shape_case``; uniformly, or in proportion to ``weights``, one per image of
    :func:`glyph_bank`), each under its own random distortion (:func:`inference.training.augment.random_distortion`)
    and, for a share ``wide_pen`` of them (none by default), a pen one pixel wider. ``n`` None: every character of
    :func:`glyph_bank` once, in its order (``(len(glyph_bank()), 784)``), each under its own distortion and pen."""
    typeset = glyph_bank(same_shape_case)
    penned = stroke_glyph_bank(same_shape_case) if strokes > 0 else None
    if n is None and weights is not None:
        raise ValueError("weights choose which characters to draw; with n None every character is drawn once")
    if n is None:
        drawn, n = typeset.clone(), len(typeset)
    elif weights is None:
        drawn = typeset[torch.randint(len(typeset), (n,))]
    elif weights.shape != (len(typeset),):
        raise ValueError(f"weights must be one per typeset character, shape ({len(typeset)},), got {tuple(weights.shape)}")
    else:
        drawn = typeset[torch.multinomial(weights.cpu(), n, replacement=True)]
    if penned is not None:
        from_strokes = torch.rand(n) < strokes
        drawn[from_strokes] = penned[torch.randint(len(penned), (int(from_strokes.sum()),))]
    drawn = drawn.to(device)
    return normalize_box(random_wider_pen(random_distortion(drawn, 1.0), wide_pen))
