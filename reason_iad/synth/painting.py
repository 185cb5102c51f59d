"""Shared choices for defect painters: where a defect goes, how big and thick it is, which tone stands out.

Sizes follow the dataset's visibility rule: blobs cover about 1-4 % of the image, strokes are at least
~1.8 % of the side wide so they survive downscaling to 112 px.
"""

from __future__ import annotations

import numpy as np

from reason_iad.synth.fields import luminance
from reason_iad.synth.shapes import Point

STAIN_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.88, 0.76, 0.22),
    (0.18, 0.56, 0.62),
    (0.78, 0.34, 0.66),
    (0.93, 0.92, 0.86),
    (0.24, 0.18, 0.14),
    (0.36, 0.62, 0.30),
)
"""Candidate tints for colour defects; painters take one far from the surface colour."""


def region_balanced_spot(rng: np.random.Generator, margin: float = 0.06) -> Point:
    """A point inside a uniformly chosen cell of the 3x3 grid, away from the cell borders.

    Args:
        rng: Random generator.
        margin: Distance kept from the cell borders (image fractions).

    Returns:
        (y, x) as fractions of the side, clipped to [0.12, 0.88].
    """
    cell = int(rng.integers(9))
    row, col = divmod(cell, 3)
    y = rng.uniform(row / 3 + margin, (row + 1) / 3 - margin)
    x = rng.uniform(col / 3 + margin, (col + 1) / 3 - margin)
    return float(np.clip(y, 0.12, 0.88)), float(np.clip(x, 0.12, 0.88))


def segment(centre: Point, heading: float, length: float, bend: float = 0.0) -> list[Point]:
    """A (possibly slightly bent) stroke of `length` centred on `centre`, as three (y, x) points."""
    dy, dx = np.sin(heading) * length / 2, np.cos(heading) * length / 2
    mid = (centre[0] + bend * dx, centre[1] - bend * dy)
    return [(centre[0] - dy, centre[1] - dx), mid, (centre[0] + dy, centre[1] + dx)]


def stroke_width(rng: np.random.Generator, size: int, low: float = 0.018, high: float = 0.026) -> float:
    """A stroke width in pixels, drawn as a fraction of the image side."""
    return float(rng.uniform(low, high) * size)


def farthest_colour(
    rng: np.random.Generator, colour: np.ndarray, candidates: tuple[tuple[float, float, float], ...] = STAIN_COLOURS
) -> np.ndarray:
    """One of the two candidate colours farthest from `colour` (so the defect stands out)."""
    table = np.asarray(candidates, dtype=np.float32)
    order = np.argsort(-np.linalg.norm(table - colour[None, :], axis=1))
    return table[order[int(rng.integers(2))]]


def mean_luminance(base: np.ndarray, mask: np.ndarray) -> float:
    """Mean brightness of the material colours under a mask (0.5 for an empty mask)."""
    if not mask.any():
        return 0.5
    return float(luminance(base[mask]).mean())


def tinted(base: np.ndarray, colour: np.ndarray, tint: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Recolour material with `tint`, keeping its shading relative to the surface `colour`."""
    shade = luminance(base) / max(float(luminance(colour)), 1e-3)
    return (tint[None, None, :] * np.clip(shade, 0.0, 1.6)[..., None] * strength).astype(np.float32)


def to_image(along: float, across: float, origin: Point, heading: float) -> Point:
    """Image (y, x) of a point given in an object frame that starts at `origin` and points along `heading`."""
    y = origin[0] + along * np.sin(heading) + across * np.cos(heading)
    x = origin[1] + along * np.cos(heading) - across * np.sin(heading)
    return float(y), float(x)
