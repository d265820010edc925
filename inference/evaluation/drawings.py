"""Things people draw on the page: digits, and letters and shapes that are no digit, as pen strokes.

Each drawing is a list of strokes, each a polyline in fractions of the pad (x right, y down). Variants
jitter a template the way hands do: a random slant, size, position and wobble (seeded). The same
strokes are drawn with the mouse in Chromium (:func:`inference.evaluation.serving.draw_strokes`)
and rendered with the page's pen in Python (:func:`render`) for quick checks. They were written
by hand for this check, not taken from any evaluation set, and no training or choice reads them.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]
Drawing = list[Stroke]

#: The page's pad, in pixels, and its pen (inference/web/static/index.html).
PAD, PEN = 280, 28


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> Stroke:
    """Points on an ellipse from angle ``start`` to ``stop`` (degrees; 0 is right, 90 is down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(start, stop, n)]


#: Digits as people draw them with a mouse: two ways of writing each.
DIGITS: dict[str, list[Drawing]] = {
    "0": [[_arc(0.5, 0.5, 0.2, 0.32, -90, 275)], [_arc(0.5, 0.5, 0.24, 0.3, 260, -95)]],
    "1": [[[(0.52, 0.15), (0.48, 0.85)]], [[(0.36, 0.3), (0.54, 0.15), (0.54, 0.86)]]],
    "2": [
        [_arc(0.5, 0.33, 0.2, 0.17, 190, 380) + [(0.3, 0.84), (0.73, 0.84)]],
        [_arc(0.48, 0.32, 0.18, 0.16, 200, 360) + [(0.62, 0.45), (0.28, 0.85), (0.72, 0.83)]],
    ],
    "3": [
        [_arc(0.48, 0.32, 0.18, 0.16, 200, 450) + _arc(0.48, 0.66, 0.2, 0.18, 270, 500)],
        [[(0.3, 0.18), (0.68, 0.18), (0.45, 0.45)] + _arc(0.47, 0.65, 0.2, 0.2, 270, 510)],
    ],
    "4": [
        [[(0.58, 0.15), (0.26, 0.62), (0.76, 0.62)], [(0.6, 0.38), (0.6, 0.88)]],
        [[(0.32, 0.15), (0.28, 0.55), (0.72, 0.55)], [(0.66, 0.15), (0.64, 0.88)]],
    ],
    "5": [
        [[(0.7, 0.16), (0.36, 0.16), (0.33, 0.45)] + _arc(0.48, 0.64, 0.2, 0.2, 240, 500)],
        [[(0.36, 0.16), (0.33, 0.45)] + _arc(0.5, 0.64, 0.2, 0.2, 240, 490), [(0.36, 0.16), (0.72, 0.16)]],
    ],
    "6": [
        [[(0.64, 0.15), (0.4, 0.4)] + _arc(0.5, 0.65, 0.19, 0.2, 180, 540)],
        [_arc(0.62, 0.5, 0.3, 0.38, 250, 180) + _arc(0.5, 0.66, 0.18, 0.18, 180, 540)],
    ],
    "7": [
        [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.86)]],
        [[(0.28, 0.22), (0.72, 0.18), (0.5, 0.86)], [(0.4, 0.52), (0.66, 0.52)]],
    ],
    "8": [
        [_arc(0.5, 0.32, 0.16, 0.16, 90, 450) + _arc(0.5, 0.66, 0.2, 0.19, -90, 270)],
        [_arc(0.5, 0.3, 0.15, 0.15, 0, 360) + _arc(0.5, 0.65, 0.19, 0.2, -90, 270)],
    ],
    "9": [
        [_arc(0.5, 0.34, 0.18, 0.18, 0, 360) + [(0.68, 0.34), (0.62, 0.86)]],
        [_arc(0.48, 0.32, 0.17, 0.16, -10, 350) + [(0.65, 0.3), (0.5, 0.86)]],
    ],
}

#: Letters and shapes that are no digit (none drawn like a 0, 1 or 7: no circle, no bar, no "L").
NOT_DIGITS: dict[str, Drawing] = {
    "house": [[(0.25, 0.85), (0.25, 0.45), (0.5, 0.18), (0.75, 0.45), (0.75, 0.85), (0.25, 0.85), (0.75, 0.45)]],
    "arrow right": [[(0.15, 0.5), (0.85, 0.5)], [(0.6, 0.28), (0.85, 0.5), (0.6, 0.72)]],
    "arrow up": [[(0.5, 0.88), (0.5, 0.15)], [(0.28, 0.38), (0.5, 0.15), (0.72, 0.38)]],
    "star": [[(0.5, 0.12), (0.62, 0.85), (0.17, 0.38), (0.83, 0.38), (0.38, 0.85), (0.5, 0.12)]],
    "triangle": [[(0.5, 0.15), (0.82, 0.82), (0.18, 0.82), (0.5, 0.15)]],
    "square": [[(0.22, 0.22), (0.78, 0.22), (0.78, 0.78), (0.22, 0.78), (0.22, 0.22)]],
    "plus": [[(0.5, 0.15), (0.5, 0.85)], [(0.15, 0.5), (0.85, 0.5)]],
    "hash": [[(0.4, 0.15), (0.34, 0.85)], [(0.66, 0.15), (0.6, 0.85)], [(0.2, 0.38), (0.82, 0.38)], [(0.18, 0.62), (0.8, 0.62)]],
    "heart": [_arc(0.36, 0.36, 0.15, 0.14, 150, 360) + _arc(0.64, 0.36, 0.15, 0.14, 180, 390) + [(0.5, 0.85), (0.22, 0.43)]],
    "check mark": [[(0.2, 0.5), (0.42, 0.8), (0.82, 0.18)]],
    "equals": [[(0.2, 0.38), (0.8, 0.38)], [(0.2, 0.62), (0.8, 0.62)]],
    "A": [[(0.2, 0.86), (0.5, 0.14), (0.8, 0.86)], [(0.32, 0.58), (0.68, 0.58)]],
    "E": [[(0.72, 0.16), (0.3, 0.16), (0.3, 0.84), (0.72, 0.84)], [(0.3, 0.5), (0.64, 0.5)]],
    "F": [[(0.72, 0.16), (0.32, 0.16), (0.32, 0.86)], [(0.32, 0.5), (0.64, 0.5)]],
    "H": [[(0.28, 0.15), (0.28, 0.85)], [(0.72, 0.15), (0.72, 0.85)], [(0.28, 0.5), (0.72, 0.5)]],
    "K": [[(0.3, 0.15), (0.3, 0.85)], [(0.72, 0.15), (0.3, 0.55)], [(0.42, 0.45), (0.74, 0.85)]],
    "M": [[(0.18, 0.85), (0.22, 0.15), (0.5, 0.6), (0.78, 0.15), (0.82, 0.85)]],
    "N": [[(0.25, 0.85), (0.25, 0.15), (0.75, 0.85), (0.75, 0.15)]],
    "R": [[(0.3, 0.86), (0.3, 0.15)] + _arc(0.42, 0.32, 0.22, 0.17, -90, 90) + [(0.3, 0.49), (0.74, 0.86)]],
    "W": [[(0.15, 0.15), (0.3, 0.85), (0.5, 0.35), (0.7, 0.85), (0.85, 0.15)]],
    "X": [[(0.22, 0.15), (0.78, 0.85)], [(0.78, 0.15), (0.22, 0.85)]],
    "Y": [[(0.22, 0.15), (0.5, 0.5), (0.78, 0.15)], [(0.5, 0.5), (0.5, 0.86)]],
}


def jitter(drawing: Drawing, rng: np.random.Generator) -> Drawing:
    """A hand's variant of ``drawing``: slant, scale, shift (as a whole) and a small wobble of every point."""
    angle = math.radians(rng.uniform(-10, 10))
    scale = rng.uniform(0.8, 1.05)
    shear = rng.uniform(-0.15, 0.15)
    dx, dy = rng.uniform(-0.08, 0.08, 2)
    out = []
    for stroke in drawing:
        points = []
        for x, y in stroke:
            u, v = x - 0.5, y - 0.5
            u, v = u + shear * v, v
            u, v = u * math.cos(angle) - v * math.sin(angle), u * math.sin(angle) + v * math.cos(angle)
            wobble = rng.normal(0, 0.01, 2)
            points.append((0.5 + scale * u + dx + wobble[0], 0.5 + scale * v + dy + wobble[1]))
        out.append(points)
    return out


def variants(templates: dict[str, list[Drawing]], per_template: int, seed: int = 0) -> list[tuple[str, Drawing]]:
    """``(name, drawing)`` for ``per_template`` jittered variants of every template, seeded."""
    rng = np.random.default_rng(seed)
    return [(name, jitter(d, rng)) for name, ds in templates.items() for d in ds for _ in range(per_template)]


def render(drawing: Drawing, pad: int = PAD, pen: int = PEN) -> Image.Image:
    """The drawing as the page's canvas holds it: a black pen of ``pen`` pixels, round caps, on white."""
    scale = 4  # drawn large, then reduced, for antialiased edges as the browser's canvas has them
    image = Image.new("L", (pad * scale, pad * scale), 255)
    ink = ImageDraw.Draw(image)
    for stroke in drawing:
        points = [(x * pad * scale, y * pad * scale) for x, y in stroke]
        ink.line(points, fill=0, width=pen * scale, joint="curve")
        for x, y in (points[0], points[-1]):
            r = pen * scale / 2
            ink.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return image.resize((pad, pad), Image.Resampling.LANCZOS)
