"""Binary and soft shape masks (blobs, strokes, polygons) and the 3x3 region of a mask.

Positions are fractions of the image side, (y, x) order; widths are in pixels. Strokes and polygons are
drawn with Pillow (supersampled where an anti-aliased coverage is wanted), blobs are computed with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from reason_iad.mmad import REGIONS
from reason_iad.synth.fields import coordinates

Point = tuple[float, float]


def blob_mask(
    rng: np.random.Generator,
    size: int,
    centre: Point,
    area: float,
    *,
    roughness: float = 0.18,
    elongation: float = 1.0,
) -> np.ndarray:
    """An irregular closed blob with a wobbly outline.

    Args:
        rng: Random generator (outline harmonics and orientation).
        size: Image side in pixels.
        centre: (y, x) centre as fractions of the side.
        area: Target area as a fraction of the image area.
        roughness: Amplitude of the outline wobble relative to the radius.
        elongation: Ratio of the long to the short axis.

    Returns:
        A boolean (size, size) mask.
    """
    y, x = coordinates(size)
    angle = rng.uniform(0.0, np.pi)
    dy, dx = y - centre[0], x - centre[1]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    along = along / np.sqrt(elongation)
    across = across * np.sqrt(elongation)
    theta = np.arctan2(across, along)
    wobble = np.ones_like(theta)
    for harmonic in range(2, 6):
        amplitude = roughness * rng.uniform(0.3, 1.0) / (harmonic - 1)
        wobble += amplitude * np.cos(harmonic * theta + rng.uniform(0.0, 2.0 * np.pi))
    radius = np.sqrt(area / np.pi)
    return (along**2 + across**2) < (radius * wobble) ** 2


def stroke_mask(size: int, points: Sequence[Point], width_px: float) -> np.ndarray:
    """A thick polyline with round joints and caps.

    Args:
        size: Image side in pixels.
        points: Polyline vertices as (y, x) fractions.
        width_px: Stroke width in pixels.

    Returns:
        A boolean (size, size) mask.
    """
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [(p[1] * size, p[0] * size) for p in points]
    width = max(1, int(round(width_px)))
    draw.line(xy, fill=255, width=width, joint="curve")
    radius = width / 2.0
    for cx, cy in (xy[0], xy[-1]):
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    return np.asarray(canvas) > 127


def polygon_coverage(size: int, vertices: Sequence[Point], supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage (0..1) of a filled polygon.

    Args:
        size: Image side in pixels.
        vertices: Polygon vertices as (y, x) fractions.
        supersample: Drawing scale before box-filter downsampling.

    Returns:
        A float32 (size, size) coverage map.
    """
    big = size * supersample
    canvas = Image.new("L", (big, big), 0)
    ImageDraw.Draw(canvas).polygon([(v[1] * big, v[0] * big) for v in vertices], fill=255)
    small = canvas.resize((size, size), resample=Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def random_walk(rng: np.random.Generator, start: Point, heading: float, length: float, steps: int) -> list[Point]:
    """A jagged path (for cracks): `steps` segments with a randomly turning heading.

    Args:
        rng: Random generator.
        start: (y, x) start as fractions.
        heading: Initial direction in radians (0 = +x).
        length: Total path length as a fraction of the side.
        steps: Number of segments.

    Returns:
        The path vertices as (y, x) fractions.
    """
    points = [start]
    step = length / steps
    for _ in range(steps):
        heading += rng.normal(0.0, 0.45)
        last = points[-1]
        points.append((last[0] + step * np.sin(heading), last[1] + step * np.cos(heading)))
    return points


def bezier(control: Sequence[Point], samples: int = 32) -> list[Point]:
    """Points along a Bezier curve with the given control points (for smooth strands).

    Args:
        control: Control points as (y, x) fractions.
        samples: Number of output points.

    Returns:
        The sampled curve as (y, x) fractions.
    """
    pts = np.asarray(control, dtype=np.float64)
    out = []
    for t in np.linspace(0.0, 1.0, samples):
        level = pts.copy()
        while len(level) > 1:
            level = (1.0 - t) * level[:-1] + t * level[1:]
        out.append((float(level[0, 0]), float(level[0, 1])))
    return out


def soften(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """A soft alpha that is 0 outside the mask and ramps up to 1 inside it (anti-aliased edges).

    Args:
        mask: Boolean mask.
        sigma_px: Blur radius in pixels.

    Returns:
        A float32 alpha of the mask's shape.
    """
    blurred = ndimage.gaussian_filter(mask.astype(np.float32), sigma=max(0.3, sigma_px))
    return np.clip(2.0 * blurred, 0.0, 1.0) * mask


def edge_band(mask: np.ndarray, width_px: int) -> np.ndarray:
    """The inner rim of a mask: mask pixels within `width_px` of its outline."""
    inner = ndimage.binary_erosion(mask, iterations=max(1, width_px))
    return mask & ~inner


def dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Grow a boolean mask by `iterations` pixels (4-connected)."""
    return ndimage.binary_dilation(mask, iterations=max(1, iterations))


def region_of(mask: np.ndarray) -> str | None:
    """The 3x3 region containing the mask's centroid, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    size_y, size_x = mask.shape
    row = min(2, int(3 * (ys.mean() + 0.5) / size_y))
    col = min(2, int(3 * (xs.mean() + 0.5) / size_x))
    return REGIONS[3 * row + col]
