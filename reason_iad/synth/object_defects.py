"""Defect painters for the object categories (bottle, metal nut, pill, screw).

Painters work in the object's own geometry (rim angle, hexagon corners, capsule frame, screw axis) and keep
their masks on the object, except where material is removed and the backdrop shows through.
"""

from __future__ import annotations

import numpy as np

from reason_iad.synth.fields import luminance, value_noise
from reason_iad.synth.objects import compose, screw_shape
from reason_iad.synth.painting import farthest_colour, mean_luminance, stroke_width, tinted, to_image
from reason_iad.synth.scene import Paint, Scene, blend
from reason_iad.synth.shapes import (
    Point,
    blob_mask,
    dilate,
    edge_band,
    polygon_coverage,
    random_walk,
    soften,
    stroke_mask,
)

PILL_TINTS = ((0.95, 0.58, 0.64), (0.82, 0.6, 0.28), (0.58, 0.72, 0.95), (0.62, 0.84, 0.52))
DIRT = np.asarray((0.16, 0.11, 0.08), dtype=np.float32)
RESIDUE = np.asarray((0.9, 0.87, 0.8), dtype=np.float32)


def _on_object(mask: np.ndarray, scene: Scene, threshold: float = 0.6) -> np.ndarray:
    return mask & (scene.layers["cover"] > threshold)


def _polar_point(scene: Scene, angle: float, distance: float) -> Point:
    """A point at `distance` (image fractions) from the object's centre in direction `angle`."""
    centre = scene.layers["centre"]
    return centre[0] + distance * np.sin(angle), centre[1] + distance * np.cos(angle)


def _mottled(rng: np.random.Generator, scene: Scene, colour: np.ndarray) -> np.ndarray:
    grain = 1.0 + 0.25 * value_noise(rng, scene.size, max(6, scene.size // 12))
    return (colour[None, None, :] * grain[..., None]).astype(np.float32)


def _bottle_breakage(rng: np.random.Generator, scene: Scene, low: float, high: float) -> Paint:
    """A chunk broken out of the rim: backdrop where glass is gone, a bright fracture edge on the inside."""
    layers = scene.layers
    rim = _polar_point(scene, rng.uniform(0, 2 * np.pi), layers["radius"])
    mask = blob_mask(rng, scene.size, rim, rng.uniform(low, high), roughness=0.3) & (layers["cover"] > 0.02)
    fracture = edge_band(mask, max(1, scene.size // 90)) & (layers["rho"] < 0.985)
    edge_colour = layers["colour"] * 0.5 + 0.45
    painted = np.where(fracture[..., None], edge_colour[None, None, :], layers["background"])
    return Paint(mask, painted.astype(np.float32), {"look": "gap"})


def bottle_broken_large(rng: np.random.Generator, scene: Scene) -> Paint:
    """A large piece missing from the rim."""
    return _bottle_breakage(rng, scene, 0.04, 0.06)


def bottle_broken_small(rng: np.random.Generator, scene: Scene) -> Paint:
    """A small chip missing from the rim."""
    return _bottle_breakage(rng, scene, 0.013, 0.02)


def bottle_contamination(rng: np.random.Generator, scene: Scene) -> Paint:
    """A foreign particle on the glass: dark on clear glass, pale on dark glass."""
    layers = scene.layers
    spot = _polar_point(scene, rng.uniform(0, 2 * np.pi), layers["radius"] * rng.uniform(0.58, 0.8))
    mask = blob_mask(rng, scene.size, spot, rng.uniform(0.01, 0.022), roughness=0.35)
    mask = _on_object(mask, scene) & (layers["rho"] > layers["opening"] + 0.05)
    look = "dark" if mean_luminance(scene.base, mask) > 0.3 else "light"
    painted = _mottled(rng, scene, DIRT if look == "dark" else RESIDUE)
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.7)), {"look": look})


def _nut_face_point(rng: np.random.Generator, scene: Scene) -> Point:
    layers = scene.layers
    apothem = layers["radius"] * np.cos(np.pi / 6)
    return _polar_point(scene, rng.uniform(0, 2 * np.pi), rng.uniform(layers["hole"] * 1.3, apothem * 0.8))


def metal_nut_scratch(rng: np.random.Generator, scene: Scene) -> Paint:
    """A straight scratch across the face: a dark groove on bright metal, a bright line on dark metal."""
    centre, heading, length = _nut_face_point(rng, scene), rng.uniform(0, np.pi), rng.uniform(0.16, 0.28)
    dy, dx = np.sin(heading) * length / 2, np.cos(heading) * length / 2
    points = [(centre[0] - dy, centre[1] - dx), (centre[0] + dy, centre[1] + dx)]
    mask = _on_object(stroke_mask(scene.size, points, stroke_width(rng, scene.size)), scene)
    look = "dark" if mean_luminance(scene.base, mask) > 0.45 else "light"
    painted = scene.base * 0.3 if look == "dark" else scene.base * 0.3 + 0.62
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.5)), {"look": look})


def metal_nut_bent(rng: np.random.Generator, scene: Scene) -> Paint:
    """One hexagon corner bent outwards and sideways; the tilted flap catches less light."""
    layers = scene.layers
    vertices = np.asarray(layers["vertices"])
    k = int(rng.integers(6))
    corner, before, after = vertices[k], vertices[k - 1], vertices[(k + 1) % 6]
    cut = rng.uniform(0.38, 0.5)
    a, b = corner + cut * (before - corner), corner + cut * (after - corner)
    outward, sideways = corner - (a + b) / 2, (b - a) / 2
    tip = corner + outward * rng.uniform(0.45, 0.7) + sideways * rng.uniform(-0.5, 0.5)
    old = polygon_coverage(scene.size, [tuple(a), tuple(corner), tuple(b)])
    flap = polygon_coverage(scene.size, [tuple(a), tuple(tip), tuple(b)])
    cover = np.clip(layers["cover"] * (1.0 - old) + flap, 0.0, 1.0)
    surface = np.where((flap > 0)[..., None], layers["surface"] * rng.uniform(0.4, 0.5), layers["surface"])
    mask = (old > 0.01) | (flap > 0.01)
    return Paint(mask, compose(layers["background"], surface, cover), {"look": "warp"})


def metal_nut_color(rng: np.random.Generator, scene: Scene) -> Paint:
    """A heat-tint (blue) or rust (brown) patch on the face."""
    mask = _on_object(blob_mask(rng, scene.size, _nut_face_point(rng, scene), rng.uniform(0.015, 0.03)), scene)
    colour = scene.layers["colour"]
    if luminance(colour) < 0.45:
        look = "rust"
    elif colour[2] < 0.6 * colour[0]:
        look = "blue"
    else:
        look = "blue" if rng.random() < 0.5 else "rust"
    tint = np.asarray((0.35, 0.45, 0.9) if look == "blue" else (0.74, 0.38, 0.16), dtype=np.float32)
    painted = tinted(scene.base, colour, tint)
    return Paint(mask, blend(scene.base, painted, soften(mask, 1.5)), {"look": look})


def _pill_point(rng: np.random.Generator, scene: Scene, across_range: float) -> Point:
    layers = scene.layers
    straight = layers["half_length"] - layers["half_height"]
    along = rng.uniform(-1.0, 1.0) * (straight + 0.3 * layers["half_height"])
    across = rng.uniform(-across_range, across_range) * layers["half_height"]
    return to_image(along, across, layers["centre"], layers["rotation"])


def pill_crack(rng: np.random.Generator, scene: Scene) -> Paint:
    """A dark crack running across the pill's short axis."""
    layers = scene.layers
    along = rng.uniform(-0.8, 0.8) * (layers["half_length"] - layers["half_height"])
    start = to_image(along, -1.05 * layers["half_height"], layers["centre"], layers["rotation"])
    heading = layers["rotation"] + np.pi / 2 + rng.uniform(-0.35, 0.35)
    path = random_walk(rng, start, heading, 2.2 * layers["half_height"], 5)
    mask = _on_object(stroke_mask(scene.size, path, stroke_width(rng, scene.size, 0.016, 0.022)), scene)
    return Paint(mask, blend(scene.base, scene.base * 0.3, soften(mask, 0.5)), {"look": "dark"})


def pill_contamination(rng: np.random.Generator, scene: Scene) -> Paint:
    """A dark foreign speck, much larger than the pill's own speckles."""
    spot = _pill_point(rng, scene, 0.5)
    mask = _on_object(blob_mask(rng, scene.size, spot, rng.uniform(0.007, 0.015), roughness=0.35), scene)
    return Paint(mask, blend(scene.base, _mottled(rng, scene, DIRT), soften(mask, 0.6)), {"look": "dark"})


def pill_color(rng: np.random.Generator, scene: Scene) -> Paint:
    """A patch of the coating tinted away from the pill colour (speckles and shading kept)."""
    spot = _pill_point(rng, scene, 0.4)
    mask = _on_object(blob_mask(rng, scene.size, spot, rng.uniform(0.025, 0.045), roughness=0.2), scene)
    colour = scene.layers["colour"]
    painted = tinted(scene.base, colour, farthest_colour(rng, colour, PILL_TINTS))
    return Paint(mask, blend(scene.base, painted, soften(mask, 2.0)), {"look": "tint"})


def screw_scratch_head(rng: np.random.Generator, scene: Scene) -> Paint:
    """A scratch across the domed head: bright on dark screws, dark on bright ones."""
    layers, geometry = scene.layers, scene.layers["geometry"]
    head_length, head_width = geometry["head_length"], geometry["head_width"]
    side = 1.0 if rng.random() < 0.5 else -1.0
    ends = [
        (rng.uniform(0.25, 0.5) * head_length, -0.9 * side * head_width),
        (rng.uniform(0.6, 0.95) * head_length, 0.9 * side * head_width),
    ]
    points = [to_image(s, t, layers["origin"], layers["heading"]) for s, t in ends]
    stroke = stroke_mask(scene.size, points, stroke_width(rng, scene.size, 0.024, 0.03))
    mask = _on_object(stroke, scene) & (layers["s"] <= head_length)
    look = "dark" if mean_luminance(scene.base, mask) > 0.55 else "light"
    painted = scene.base * 0.3 if look == "dark" else scene.base * 0.3 + 0.65
    return Paint(mask, blend(scene.base, painted, soften(mask, 0.5)), {"look": look})


def screw_thread_side(rng: np.random.Generator, scene: Scene) -> Paint:
    """Thread crests torn off along one side of the shaft, leaving a dull, narrower shaft."""
    layers, g = scene.layers, scene.layers["geometry"]
    s, t = layers["s"], layers["t"]
    span = rng.uniform(0.12, 0.18)
    start = rng.uniform(g["head_length"] + 0.04, g["length"] - g["tip_length"] - span)
    side = 1.0 if rng.random() < 0.5 else -1.0
    width = g["shaft_width"]
    box = (s >= start) & (s <= start + span) & (side * t >= 0.2 * width) & (side * t <= 1.3 * width)
    mask = box & (layers["cover"] > 0.05)
    torn = rng.uniform(0.5, 0.6) * width
    cover = np.clip((torn - np.abs(t)) * scene.size + 0.5, 0.0, 1.0)
    painted = compose(layers["background"], layers["surface"] * 0.55, cover)
    return Paint(mask, painted, {"look": "gap"})


def screw_manipulated_front(rng: np.random.Generator, scene: Scene) -> Paint:
    """The tip cut off or bent out of line."""
    layers, g = scene.layers, scene.layers["geometry"]
    s, t, cover = layers["s"], layers["t"], layers["cover"]
    pivot = g["length"] - rng.uniform(0.14, 0.2)
    kept = cover * (s <= pivot)
    tip_cover, surface = np.zeros_like(cover), layers["surface"]
    if rng.random() < 0.5:
        bend = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 0.8)
        along, across = s - pivot, t
        s2 = pivot + along * np.cos(bend) + across * np.sin(bend)
        t2 = -along * np.sin(bend) + across * np.cos(bend)
        tip_cover, tip_lum = screw_shape(s2, t2, g, scene.size)
        tip_cover = tip_cover * (s2 > pivot)
        tip_surface = layers["colour"][None, None, :] * tip_lum[..., None]
        surface = np.where((tip_cover > kept)[..., None], tip_surface, surface).astype(np.float32)
    new_cover = np.maximum(kept, tip_cover)
    mask = dilate(((cover > 0.02) & (s > pivot - 0.005)) | (tip_cover > 0.02), 1)
    return Paint(mask, compose(layers["background"], surface, new_cover), {"look": "gap"})
