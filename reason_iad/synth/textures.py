"""Renderers of the four texture categories: carpet (woven fabric), wood, tile (speckled stone) and grid (wire mesh).

Each `render_<name>(rng, size)` draws its variants, pattern and colours from `rng` and returns a `Scene`.
The tile's grain comes from scikit-image's CC0 `gravel` photograph, cropped, turned and tinted per image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import data as skimage_data

from reason_iad.synth.catalog import CATEGORIES, Variant
from reason_iad.synth.fields import (
    coordinates,
    fractal_noise,
    jitter_colour,
    resize_field,
    value_noise,
)
from reason_iad.synth.scene import Scene, lit_scene


def pick(rng: np.random.Generator, variants: tuple[Variant, ...]) -> Variant:
    """One variant chosen uniformly."""
    return variants[int(rng.integers(len(variants)))]


def render_carpet(rng: np.random.Generator, size: int) -> Scene:
    """A woven fabric: plain or basket weave, shaded threads with twist, dyed in one of the palette colours."""
    category = CATEGORIES["carpet"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.04)
    period = size * rng.uniform(0.032, 0.045)
    angle = rng.uniform(-0.1, 0.1)
    y, x = coordinates(size)
    u = (x * np.cos(angle) + y * np.sin(angle)) * size / period + rng.random()
    v = (-x * np.sin(angle) + y * np.cos(angle)) * size / period + rng.random()
    pair = 2 if structure.key == "basket" else 1
    over = ((np.floor(u / pair) + np.floor(v / pair)) % 2).astype(bool)
    fu, fv = u % 1.0, v % 1.0
    along_u = np.sin(np.pi * fv) ** 0.7 * (0.85 + 0.15 * np.sin(2 * np.pi * (2 * u + fv)))
    along_v = np.sin(np.pi * fu) ** 0.7 * (0.85 + 0.15 * np.sin(2 * np.pi * (2 * v + fu)))
    shade = np.where(over, along_u, along_v)
    fuzz = value_noise(rng, size, max(4, size // 3))
    blotch = fractal_noise(rng, size, 3, 3)
    lum = (0.45 + 0.55 * shade) * (1.0 + 0.05 * fuzz + 0.06 * blotch)
    base = colour[None, None, :] * lum[..., None]
    return lit_scene(rng, base, structure.key, detail.key, {"colour": colour})


def render_wood(rng: np.random.Generator, size: int) -> Scene:
    """A planed board: warped grain lines (horizontal or vertical), fibres and broad tone variation."""
    category = CATEGORIES["wood"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.035)
    y, x = coordinates(size)
    horizontal = structure.key == "horizontal"
    along, across = (x, y) if horizontal else (y, x)
    frequency = rng.uniform(9.0, 16.0)
    warp = fractal_noise(rng, size, 3, 2) * rng.uniform(0.3, 0.8)
    bend = 0.2 * np.sin(2 * np.pi * (along * rng.uniform(0.3, 1.0) + rng.random()))
    phase = across * frequency + warp + bend
    lines = (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** rng.uniform(3.0, 6.0)
    fine_cells, long_cells = max(8, size // 2), 5
    fibre_cells = (fine_cells, long_cells) if horizontal else (long_cells, fine_cells)
    fibre = value_noise(rng, size, *fibre_cells)
    broad = fractal_noise(rng, size, 2, 2)
    lum = 1.0 - 0.3 * lines - 0.07 * fibre + 0.06 * broad
    base = colour[None, None, :] * lum[..., None]
    return lit_scene(rng, base, structure.key, detail.key, {"colour": colour})


def _gravel_grain(rng: np.random.Generator, size: int, coarse: bool) -> np.ndarray:
    """A normalised (zero mean, unit spread) random crop of the CC0 gravel photo, resized to `size`."""
    gravel = skimage_data.gravel().astype(np.float32)
    crop = int(rng.integers(150, 230) if coarse else rng.integers(380, 512))
    top = int(rng.integers(0, gravel.shape[0] - crop + 1))
    left = int(rng.integers(0, gravel.shape[1] - crop + 1))
    patch = np.rot90(gravel[top : top + crop, left : left + crop], k=int(rng.integers(4)))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    grain = resize_field(patch, size)
    return np.clip((grain - grain.mean()) / (grain.std() + 1e-6), -2.5, 2.5)


def render_tile(rng: np.random.Generator, size: int) -> Scene:
    """A speckled stone tile (fine or coarse grain) tinted in one of the palette colours."""
    category = CATEGORIES["tile"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.03)
    grain = _gravel_grain(rng, size, coarse=structure.key == "coarse")
    blotch = fractal_noise(rng, size, 3, 2)
    lum = 1.0 + rng.uniform(0.09, 0.13) * grain + 0.04 * blotch
    base = colour[None, None, :] * lum[..., None]
    return lit_scene(rng, base, structure.key, detail.key, {"colour": colour})


def grid_pattern(params: dict[str, Any], keep: np.ndarray | None = None, warp: np.ndarray | None = None) -> np.ndarray:
    """Draw the wire mesh described by `params` (see `render_grid`).

    Args:
        params: Pattern parameters stored in the scene's layers.
        keep: Optional (S, S) 0..1 factor on the wire coverage (0 removes wires there).
        warp: Optional (2, S, S) displacement in pixels (dy, dx) applied to the sampling coordinates.

    Returns:
        The (S, S, 3) material colours.
    """
    size, period, half = params["size"], params["period"], params["thickness"] / 2.0
    y, x = coordinates(size)
    py, px = y * size, x * size
    if warp is not None:
        py, px = py + warp[0], px + warp[1]
    cos, sin = np.cos(params["angle"]), np.sin(params["angle"])
    u = (px * cos + py * sin) / period + params["offset"][0]
    v = (-px * sin + py * cos) / period + params["offset"][1]
    background = params["background"]
    wire = params["wire"][None, None, :]
    layers = []
    for coord in (u, v):
        dist = np.abs(coord % 1.0 - 0.5) * period
        cover = np.clip(half - dist + 0.5, 0.0, 1.0) * (1.0 if keep is None else keep)
        round_ = np.sqrt(np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0))
        colour = wire * (0.35 + 0.7 * round_[..., None]) + 0.25 * round_[..., None] ** 8
        layers.append((cover[..., None], colour))
    (cu, wu), (cv, wv) = layers
    u_on_top = ((np.floor(u) + np.floor(v)) % 2 == 0)[..., None]
    u_under = (background * (1 - cu) + wu * cu) * (1 - cv) + wv * cv
    v_under = (background * (1 - cv) + wv * cv) * (1 - cu) + wu * cu
    return np.where(u_on_top, v_under, u_under).astype(np.float32)


def render_grid(rng: np.random.Generator, size: int) -> Scene:
    """A woven wire mesh (square or diamond) with rounded, shiny wires over a dark backing."""
    category = CATEGORIES["grid"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    period = size * rng.uniform(0.085, 0.115)
    angle = (np.pi / 4 if structure.key == "diamond" else 0.0) + rng.uniform(-0.05, 0.05)
    backing = jitter_colour(rng, detail.accent, 0.02)
    shade = 1.0 + 0.35 * fractal_noise(rng, size, 4, 2)
    params = {
        "size": size,
        "period": period,
        "thickness": period * rng.uniform(0.22, 0.28),
        "angle": angle,
        "offset": (float(rng.random()), float(rng.random())),
        "wire": jitter_colour(rng, detail.colour, 0.04),
        "background": (backing[None, None, :] * shade[..., None]).astype(np.float32),
    }
    return lit_scene(rng, grid_pattern(params), structure.key, detail.key, {"grid": params})
