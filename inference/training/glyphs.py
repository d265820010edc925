"""Typeset characters that are no digit, drawn as if by hand: outlier exposure with an auxiliary set made offline.

Outlier exposure (Hendrycks, Mazeika & Dietterich 2019) trains on a large, diverse set of inputs from outside
the task. Here that set is every letter, symbol and punctuation mark of the fonts that matplotlib bundles
(DejaVu Sans, DejaVu Serif, STIX: Latin, Greek, Cyrillic, Armenian, Georgian and Hebrew letters, arrows,
shapes and mathematical signs), less the characters that look like a digit: Unicode's digits, every
character Unicode's confusables (UTS #39, through ``confusable_homoglyphs``) link to one, in either case
(``O`` and ``o`` are a 0 once scaled to MNIST's box), and every glyph drawn as a narrow bar (a 1). Each is
put in MNIST's format (:func:`mnist_format`) once per process; a minibatch's draws then go through Simard
et al.'s distortions and, half of them, a wider pen, so that they look written rather than printed. No
evaluation set is read.
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
from torch.nn import functional

from inference.data.preprocess import mnist_format
from inference.training.augment import normalize_box, random_distortion

#: matplotlib's bundled fonts the bank is drawn from: a sans, a serif and STIX's mathematical and symbol glyphs.
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf")
#: Unicode's general categories kept: letters, symbols, punctuation (numbers, marks, spaces and controls are not).
CATEGORIES = ("L", "S", "P")
#: A glyph whose ink is at most this wide for its height is a bar, which MNIST writes as a 1 whatever character it is
#: (``ı``, ``ι``, ``ʃ``, ``∫``): left out of the bank.
MIN_WIDTH_TO_HEIGHT = 0.4
#: Pixels per em of the rendering, before :func:`mnist_format` scales the ink to MNIST's 20x20 box.
RENDER_SIZE = 64


@functools.lru_cache(maxsize=1)
def digit_lookalikes() -> frozenset[str]:
    """The characters that are or look like a digit: those connected to ``0``-``9`` through Unicode's
    confusables and through upper and lower case, which a scale to a fixed box erases."""
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
        todo.extend(c for c in (char.lower(), char.upper()) if len(c) == 1)
    return frozenset(found)


def _font_path(name: str) -> str:
    import matplotlib  # only its bundled fonts, and only when a bank is made: importing training stays light

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)


def glyph_characters(font: str) -> list[str]:
    """The characters of ``font`` (a file name in :data:`FONTS`) that the bank draws: categories in
    :data:`CATEGORIES`, printable, and no digit look-alike."""
    from matplotlib import ft2font

    excluded = digit_lookalikes()
    chars = (chr(code) for code in sorted(ft2font.FT2Font(_font_path(font)).get_charmap()))
    return [
        c for c in chars if c.isprintable() and not c.isspace() and unicodedata.category(c)[0] in CATEGORIES and c not in excluded
    ]


def _width_to_height(image: np.ndarray, ink: float = 0.2) -> float:
    """The ink's bounding box in a 28x28 image: its width over its height."""
    rows, cols = np.nonzero(image > ink)
    return (np.ptp(cols) + 1) / (np.ptp(rows) + 1)


@functools.lru_cache(maxsize=1)
def glyph_bank() -> Tensor:
    """``(N, 784)`` float32: every character of :func:`glyph_characters` in each of :data:`FONTS`, white on black
    in MNIST's format (10,384 images with matplotlib 3.11's fonts, rendered in 10-13 s on 2 cores, once per process)."""
    images = []
    for name in FONTS:
        font = ImageFont.truetype(_font_path(name), RENDER_SIZE)
        for char in glyph_characters(name):
            canvas = Image.new("L", (3 * RENDER_SIZE, 3 * RENDER_SIZE), 0)
            ImageDraw.Draw(canvas).text((RENDER_SIZE, RENDER_SIZE), char, fill=255, font=font)
            image, has_ink = mnist_format(canvas)
            if has_ink and _width_to_height(image) > MIN_WIDTH_TO_HEIGHT:
                images.append(image)
    return torch.from_numpy(np.stack(images).astype(np.float32)).reshape(len(images), -1)


def written_glyphs(n: int, device: torch.device) -> Tensor:
    """``(n, 784)`` characters drawn at random from :func:`glyph_bank`, each under its own random distortion
    (:func:`inference.training.augment.random_distortion`) and, for half of them, a pen one pixel wider."""
    bank = glyph_bank()
    drawn = bank[torch.randint(len(bank), (n,))].to(device)
    drawn = random_distortion(drawn, 1.0)
    thick = torch.rand(n, device=device) < 0.5
    wide = functional.max_pool2d(drawn.view(-1, 1, 28, 28), 3, stride=1, padding=1).reshape(n, -1)
    return normalize_box(torch.where(thick[:, None], wide, drawn))
