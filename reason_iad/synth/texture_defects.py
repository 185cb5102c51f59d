"""Defect painters for the texture categories (carpet, wood, tile, grid).

Each painter takes the per-image generator and a clean `Scene` and returns a `Paint`: a mask and the new
material colours inside it. Placement is region-balanced so every 3x3 location occurs about equally often.
"""

from __future__ import annotations

import numpy as np

from reason_iad.synth.fields import coordinates, luminance, value_noise
from reason_iad.synth.painting import (
    farthest_colour,
    mean_luminance,
    region_balanced_spot,
    segment,
    stroke_width,
    tinted,
)
from reason_iad.synth.scene import Paint, Scene, blend
from reason_iad.synth.shapes import bezier, blob_mask, dilate, edge_band, random_walk, soften, stroke_mask
from reason_iad.synth.textures import grid_pattern

LIGHT_THREAD = np.asarray((0.93, 0.91, 0.86), dtype=np.float32)
DARK_THREAD = np.asarray((0.10, 0.09, 0.09), dtype=np.float32)


def _dark_fill(rng: np.random.Generator, scene: Scene, level: float) -> np.ndarray:
    """A dark, slightly mottled fill (a hole or gap showing what lies beneath)."""
    mottle = 1.0 + 0.3 * value_noise(rng, scene.size, max(4, scene.size // 8))
    return np.broadcast_to(level * mottle[..., None], scene.base.shape).astype(np.float32)


def carpet_hole(rng: np.random.Generator, scene: Scene) -> Paint:
    """A ragged hole: dark backing inside, frayed thread ends along the rim."""
    mask = blob_mask(rng, scene.size, region_balanced_spot(rng), rng.uniform(0.012, 0.03), roughness=0.3)
    painted = _dark_fill(rng, scene, rng.uniform(0.05, 0.1))
    fray = edge_band(mask, max(1, scene.size // 128)) & (value_noise(rng, scene.size, scene.size // 4) > 0)
    painted = np.where(fray[..., None], scene.base * 1.15, painted)
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.7)), {"look": "dark"})


def carpet_cut(rng: np.random.Generator, scene: Scene) -> Paint:
    """A long narrow slit through the weave."""
    points = segment(region_balanced_spot(rng), rng.uniform(0, np.pi), rng.uniform(0.25, 0.42), rng.uniform(-0.1, 0.1))
    mask = stroke_mask(scene.size, points, stroke_width(rng, scene.size, 0.022, 0.032))
    painted = _dark_fill(rng, scene, rng.uniform(0.05, 0.1))
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.7)), {"look": "dark"})


def carpet_color(rng: np.random.Generator, scene: Scene) -> Paint:
    """A dye stain: a patch recoloured with a far-away tint, weave shading kept."""
    mask = blob_mask(rng, scene.size, region_balanced_spot(rng), rng.uniform(0.018, 0.04), roughness=0.25)
    colour = scene.layers["colour"]
    painted = tinted(scene.base, colour, farthest_colour(rng, colour))
    return Paint(mask, blend(scene.base, painted, soften(mask, 2.0)), {"look": "tint"})


def carpet_thread(rng: np.random.Generator, scene: Scene) -> Paint:
    """A loose thread lying in a curve on the surface, pale on dark fabric and dark on pale fabric."""
    centre, heading, length = region_balanced_spot(rng), rng.uniform(0, 2 * np.pi), rng.uniform(0.28, 0.45)
    ends = segment(centre, heading, length)
    control = [ends[0]]
    for fraction in (0.33, 0.66):
        base_point = (
            ends[0][0] + fraction * (ends[2][0] - ends[0][0]),
            ends[0][1] + fraction * (ends[2][1] - ends[0][1]),
        )
        control.append((base_point[0] + rng.uniform(-0.12, 0.12), base_point[1] + rng.uniform(-0.12, 0.12)))
    control.append(ends[2])
    mask = stroke_mask(scene.size, bezier(control), stroke_width(rng, scene.size, 0.018, 0.024))
    look = "light" if luminance(scene.layers["colour"]) < 0.5 else "dark"
    colour = LIGHT_THREAD if look == "light" else DARK_THREAD
    twist = 0.85 + 0.15 * value_noise(rng, scene.size, scene.size // 3)
    painted = colour[None, None, :] * twist[..., None]
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.6)), {"look": look})


def wood_scratch(rng: np.random.Generator, scene: Scene) -> Paint:
    """A scraped line: pale on dark wood, dark on pale wood."""
    points = segment(region_balanced_spot(rng), rng.uniform(0, np.pi), rng.uniform(0.3, 0.55), rng.uniform(-0.08, 0.08))
    mask = stroke_mask(scene.size, points, stroke_width(rng, scene.size))
    look = "dark" if mean_luminance(scene.base, mask) > 0.55 else "light"
    painted = scene.base * 0.35 if look == "dark" else scene.base * 0.4 + 0.55
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.6)), {"look": look})


def wood_hole(rng: np.random.Generator, scene: Scene) -> Paint:
    """One to three round bore holes with dark interiors and a darkened rim."""
    centre = region_balanced_spot(rng)
    total = rng.uniform(0.01, 0.025)
    count = int(rng.integers(1, 4))
    mask = blob_mask(rng, scene.size, centre, total * 0.6 if count > 1 else total, roughness=0.08)
    for _ in range(count - 1):
        near = (centre[0] + rng.uniform(-0.09, 0.09), centre[1] + rng.uniform(-0.09, 0.09))
        mask |= blob_mask(rng, scene.size, near, total * 0.4 / (count - 1), roughness=0.08)
    painted = _dark_fill(rng, scene, rng.uniform(0.03, 0.07))
    rim = edge_band(mask, max(1, scene.size // 100))
    painted = np.where(rim[..., None], scene.base * 0.45, painted)
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.6)), {"look": "dark"})


def wood_liquid(rng: np.random.Generator, scene: Scene) -> Paint:
    """A soaked-in blotch: darker wood with a darker tide-line rim."""
    mask = blob_mask(
        rng,
        scene.size,
        region_balanced_spot(rng),
        rng.uniform(0.02, 0.04),
        roughness=0.12,
        elongation=rng.uniform(1.0, 1.8),
    )
    painted = scene.base * rng.uniform(0.45, 0.58)
    rim = edge_band(mask, max(2, scene.size // 80))
    painted = np.where(rim[..., None], painted * 0.8, painted)
    return Paint(mask, blend(scene.base, painted, soften(mask, 1.5)), {"look": "dark"})


def wood_color(rng: np.random.Generator, scene: Scene) -> Paint:
    """A discoloured area tinted far away from the wood tone."""
    mask = blob_mask(rng, scene.size, region_balanced_spot(rng), rng.uniform(0.02, 0.04), roughness=0.2)
    colour = scene.layers["colour"]
    painted = tinted(scene.base, colour, farthest_colour(rng, colour))
    return Paint(mask, blend(scene.base, painted, soften(mask, 2.0)), {"look": "tint"})


def tile_crack(rng: np.random.Generator, scene: Scene) -> Paint:
    """A jagged dark crack, sometimes with a side branch."""
    path = random_walk(rng, (0.0, 0.0), rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.55), int(rng.integers(6, 10)))
    spot = region_balanced_spot(rng)
    mean = np.mean(np.asarray(path), axis=0)
    path = [(p[0] - mean[0] + spot[0], p[1] - mean[1] + spot[1]) for p in path]
    width = stroke_width(rng, scene.size, 0.016, 0.022)
    mask = stroke_mask(scene.size, path, width)
    if rng.random() < 0.5:
        fork = path[int(rng.integers(2, len(path) - 1))]
        branch = random_walk(rng, fork, rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.18), 3)
        mask |= stroke_mask(scene.size, branch, width * 0.8)
    return Paint(mask, blend(scene.base, scene.base * 0.22, soften(mask, 0.5)), {"look": "dark"})


def tile_oil(rng: np.random.Generator, scene: Scene) -> Paint:
    """A dark brownish glossy smear with a small highlight."""
    centre = region_balanced_spot(rng)
    mask = blob_mask(rng, scene.size, centre, rng.uniform(0.02, 0.04), roughness=0.15, elongation=rng.uniform(1, 1.6))
    y, x = coordinates(scene.size)
    glint = 0.12 * np.exp(-((y - centre[0] + 0.02) ** 2 + (x - centre[1] + 0.02) ** 2) / 0.0008)
    painted = scene.base * np.asarray((0.42, 0.38, 0.3), dtype=np.float32) + glint[..., None]
    return Paint(mask, blend(scene.base, painted, soften(mask, 1.5)), {"look": "dark"})


def tile_gray_stroke(rng: np.random.Generator, scene: Scene) -> Paint:
    """A broad streaky gray brush stroke."""
    points = segment(region_balanced_spot(rng), rng.uniform(0, np.pi), rng.uniform(0.22, 0.36), rng.uniform(-0.1, 0.1))
    mask = stroke_mask(scene.size, points, stroke_width(rng, scene.size, 0.04, 0.06))
    level = rng.uniform(0.3, 0.4) if luminance(scene.layers["colour"]) > 0.5 else rng.uniform(0.82, 0.9)
    streaks = 0.8 + 0.2 * value_noise(rng, scene.size, scene.size // 3)
    painted = np.broadcast_to((level * streaks)[..., None], scene.base.shape)
    return Paint(mask, blend(scene.base, painted, soften(mask, 1.0) * 0.9), {"look": "gray"})


def _changed(before: np.ndarray, after: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Pixels (grown by one) where two renders differ visibly, limited to `within`."""
    return dilate(np.abs(after - before).max(axis=-1) > 0.06, 1) & within


def grid_bent(rng: np.random.Generator, scene: Scene) -> Paint:
    """Wires pushed sideways by a smooth local bump (zero outside its radius), so the openings are distorted."""
    params = scene.layers["grid"]
    centre, radius = region_balanced_spot(rng), rng.uniform(0.11, 0.14)
    y, x = coordinates(scene.size)
    reach = np.clip(1.0 - ((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / radius**2, 0.0, 1.0)
    bump = reach**2  # smooth, exactly zero beyond `radius`; slope stays below ~0.6 so wires never fold
    amount, direction = rng.uniform(0.3, 0.38) * radius * scene.size, rng.uniform(0, 2 * np.pi)
    warp = np.stack([amount * np.sin(direction) * bump, amount * np.cos(direction) * bump])
    bent = np.clip(grid_pattern(params, warp=warp), 0.0, 1.0)
    return Paint(_changed(scene.base, bent, reach > 0), bent, {"look": "warp"})


def grid_broken(rng: np.random.Generator, scene: Scene) -> Paint:
    """Wires cut away inside a small area, leaving a gap with cut ends."""
    params = scene.layers["grid"]
    gap = blob_mask(rng, scene.size, region_balanced_spot(rng), rng.uniform(0.014, 0.028), roughness=0.3)
    broken = np.clip(grid_pattern(params, keep=1.0 - gap.astype(np.float32)), 0.0, 1.0)
    return Paint(_changed(scene.base, broken, dilate(gap, 2)), broken, {"look": "gap"})


def grid_metal_contamination(rng: np.random.Generator, scene: Scene) -> Paint:
    """A faceted metal chip lying on the mesh: shiny on dark or copper wire, rusty on silver wire."""
    mask = blob_mask(
        rng,
        scene.size,
        region_balanced_spot(rng),
        rng.uniform(0.01, 0.022),
        roughness=0.35,
        elongation=rng.uniform(1.0, 2.0),
    )
    wire = scene.layers["grid"]["wire"]
    look = "rust" if luminance(wire) > 0.65 else "bright"
    chip = np.asarray((0.62, 0.32, 0.14) if look == "rust" else (0.95, 0.93, 0.88), dtype=np.float32)
    facets = np.clip(0.7 + 0.45 * value_noise(rng, scene.size, max(6, scene.size // 10)), 0.3, 1.2)
    painted = chip[None, None, :] * facets[..., None]
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.7)), {"look": look})
