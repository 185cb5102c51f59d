"""Renderers of the four object categories: bottle (seen from the top), metal nut, pill and screw.

Each `render_<name>(rng, size)` returns a `Scene` whose layers hold the backdrop, the object's material
(`surface`), its anti-aliased coverage (`cover`) and its geometry, so painters can cut or reshape the object.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from reason_iad.synth.catalog import CATEGORIES
from reason_iad.synth.fields import coordinates, fractal_noise, jitter_colour, luminance, value_noise
from reason_iad.synth.scene import Scene, lit_scene
from reason_iad.synth.textures import pick


def backdrop(rng: np.random.Generator, size: int, object_colour: np.ndarray) -> np.ndarray:
    """A plain inspection table: dark behind bright objects, light behind dark ones, with mottling."""
    bright_object = float(luminance(object_colour)) > 0.45
    level = rng.uniform(0.06, 0.14) if bright_object else rng.uniform(0.6, 0.72)
    tint = 1.0 + rng.uniform(-0.04, 0.04, size=3)
    mottle = 1.0 + 0.12 * fractal_noise(rng, size, 3, 3)
    return (level * tint[None, None, :] * mottle[..., None]).astype(np.float32)


def compose(background: np.ndarray, surface: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Lay an object's material over the backdrop with an anti-aliased coverage (S, S)."""
    c = cover[..., None]
    return (background * (1.0 - c) + surface * c).astype(np.float32)


def _object_scene(rng: np.random.Generator, surface: np.ndarray, cover: np.ndarray, info: dict) -> Scene:
    """Finish an object render: backdrop, composition, layers, lighting and noise."""
    background = backdrop(rng, cover.shape[0], info["colour"])
    layers = {"background": background, "surface": surface, "cover": cover, **info}
    return lit_scene(rng, compose(background, surface, cover), info["structure"], info["detail"], layers)


def _polar(size: int, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Radius (in image fractions) and angle of every pixel around `centre`."""
    y, x = coordinates(size)
    dy, dx = y - centre[0], x - centre[1]
    return np.sqrt(dy**2 + dx**2), np.arctan2(dy, dx)


def render_bottle(rng: np.random.Generator, size: int) -> Scene:
    """A glass bottle seen from above: bright concentric rim rings around a dark opening."""
    category = CATEGORIES["bottle"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.04)
    centre = (0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03))
    radius = rng.uniform(0.40, 0.44)
    opening = rng.uniform(0.30, 0.36)
    dist, theta = _polar(size, centre)
    rho = dist / radius
    rings = np.zeros_like(rho)
    for position, width, strength in ((0.96, 0.025, 0.7), (0.78, 0.05, 0.35), (0.52, 0.03, 0.8), (0.44, 0.02, 0.5)):
        jitter = rng.uniform(-0.02, 0.02)
        rings += strength * np.exp(-(((rho - position - jitter) / width) ** 2))
    shine = 0.15 * np.cos(theta - rng.uniform(0, 2 * np.pi)) * rho
    lum = 0.45 + 0.2 * rho + 0.6 * rings + shine + 0.04 * value_noise(rng, size, 12)
    inner = np.clip((rho - opening) * radius * size * 0.5 + 0.5, 0.0, 1.0)
    lum = lum * inner + (0.06 + 0.1 * rho) * (1.0 - inner)
    surface = colour[None, None, :] * lum[..., None]
    cover = np.clip((radius - dist) * size + 0.5, 0.0, 1.0).astype(np.float32)
    info = {"colour": colour, "structure": structure.key, "detail": detail.key}
    info |= {"centre": centre, "radius": radius, "opening": opening, "rho": rho, "theta": theta}
    return _object_scene(rng, surface.astype(np.float32), cover, info)


def hexagon_edge_distance(size: int, centre: tuple[float, float], radius: float, rotation: float) -> np.ndarray:
    """Signed distance (image fractions, positive inside) to the outline of a regular hexagon."""
    y, x = coordinates(size)
    dy, dx = y - centre[0], x - centre[1]
    apothem = radius * np.cos(np.pi / 6)
    normals = rotation + np.pi / 6 + np.arange(6) * np.pi / 3
    reach = np.max([dy * np.sin(a) + dx * np.cos(a) for a in normals], axis=0)
    return apothem - reach


def render_metal_nut(rng: np.random.Generator, size: int) -> Scene:
    """A hexagonal nut with a central hole, turned metal with concentric marks and dark chamfers."""
    category = CATEGORIES["metal_nut"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.04)
    centre = (0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03))
    radius, rotation = rng.uniform(0.34, 0.38), rng.uniform(0.0, np.pi / 3)
    hole = radius * rng.uniform(0.38, 0.44)
    edge = hexagon_edge_distance(size, centre, radius, rotation)
    dist, theta = _polar(size, centre)
    cover = np.clip(edge * size + 0.5, 0.0, 1.0) * np.clip((dist - hole) * size + 0.5, 0.0, 1.0)
    marks = 0.05 * np.sin(dist * size * 1.7 + 3.0 * value_noise(rng, size, 6))
    shine = 0.22 * np.cos(2.0 * (theta - rng.uniform(0, np.pi))) * (dist / radius)
    chamfer = np.where(edge < 0.06 * radius, 0.72, 1.0) * np.where(dist < hole * 1.15, 1.2, 1.0)
    lum = (0.72 + shine + marks) * chamfer
    surface = (colour[None, None, :] * lum[..., None]).astype(np.float32)
    vertices = [
        (centre[0] + radius * np.sin(rotation + k * np.pi / 3), centre[1] + radius * np.cos(rotation + k * np.pi / 3))
        for k in range(6)
    ]
    info = {"colour": colour, "structure": structure.key, "detail": detail.key}
    info |= {"centre": centre, "radius": radius, "hole": hole, "vertices": vertices, "edge": edge}
    return _object_scene(rng, surface, cover.astype(np.float32), info)


def _speckles(
    rng: np.random.Generator, size: int, count: int, centre: tuple[float, float], spread: float
) -> np.ndarray:
    """Alpha (S, S) of `count` small round speckles scattered around `centre`."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        py = (centre[0] + rng.uniform(-spread, spread)) * size
        px = (centre[1] + rng.uniform(-spread, spread)) * size
        r = rng.uniform(0.004, 0.008) * size
        draw.ellipse((px - r, py - r, px + r, py + r), fill=int(rng.integers(150, 256)))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def render_pill(rng: np.random.Generator, size: int) -> Scene:
    """An oblong coated capsule, cylinder-shaded with a specular band and coloured speckles."""
    category = CATEGORIES["pill"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.03)
    centre = (0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03))
    half_length, half_height, rotation = rng.uniform(0.34, 0.39), rng.uniform(0.15, 0.18), rng.uniform(-0.12, 0.12)
    y, x = coordinates(size)
    dy, dx = y - centre[0], x - centre[1]
    along = dx * np.cos(rotation) + dy * np.sin(rotation)
    across = -dx * np.sin(rotation) + dy * np.cos(rotation)
    reach = np.maximum(np.abs(along) - (half_length - half_height), 0.0)
    depth = np.sqrt(reach**2 + across**2) / half_height
    cover = np.clip((1.0 - depth) * half_height * size + 0.5, 0.0, 1.0).astype(np.float32)
    spec = 0.1 * np.exp(-((((across / half_height) + 0.45) / 0.18) ** 2))
    lum = 0.8 + 0.2 * np.sqrt(np.clip(1.0 - depth**2, 0.0, 1.0)) + spec
    surface = colour[None, None, :] * lum[..., None]
    dots = _speckles(rng, size, int(rng.integers(50, 90)), centre, half_length) * cover
    accent = np.asarray(detail.accent, dtype=np.float32)
    surface = surface * (1.0 - dots[..., None]) + accent[None, None, :] * lum[..., None] * dots[..., None]
    info = {"colour": colour, "structure": structure.key, "detail": detail.key, "depth": depth}
    info |= {"centre": centre, "half_length": half_length, "half_height": half_height, "rotation": rotation}
    return _object_scene(rng, surface.astype(np.float32), cover, info)


SCREW_HEADINGS = {"right": 0.0, "down": np.pi / 2, "left": np.pi, "up": -np.pi / 2}
"""Direction of the tip per screw structure key (radians, 0 = +x, y pointing down)."""


def screw_shape(s: np.ndarray, t: np.ndarray, geometry: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and shading of a screw in its own frame (s along the axis from the head, t across).

    Args:
        s: Along-axis coordinate of every pixel (image fractions).
        t: Across-axis coordinate of every pixel (image fractions).
        geometry: Screw dimensions (`length`, `head_length`, `head_width`, `shaft_width`, `tip_length`, `pitch`).
        size: Image side in pixels.

    Returns:
        (cover, lum): anti-aliased coverage and material brightness, both (S, S).
    """
    g = geometry
    head_reach = np.clip(1.0 - ((g["head_length"] - s) / g["head_length"]) ** 2, 0.0, 1.0)
    head_half = g["head_width"] * np.sqrt(head_reach)
    tooth = 2.0 * np.abs((s / g["pitch"]) % 1.0 - 0.5)
    taper = np.clip((g["length"] - s) / g["tip_length"], 0.0, 1.0)
    shaft_half = g["shaft_width"] * (0.8 + 0.2 * tooth) * taper
    in_head = (s >= 0.0) & (s <= g["head_length"])
    in_shaft = (s > g["head_length"]) & (s <= g["length"])
    half = np.where(in_head, head_half, np.where(in_shaft, shaft_half, 0.0))
    cover = np.where(half > 0.0, np.clip((half - np.abs(t)) * size + 0.5, 0.0, 1.0), 0.0)
    round_ = np.sqrt(np.clip(1.0 - (t / np.maximum(half, 1e-6)) ** 2, 0.0, 1.0))
    thread = np.where(in_shaft, 0.78 + 0.22 * np.cos(2 * np.pi * (s / g["pitch"] + 0.35 * t / g["shaft_width"])), 1.0)
    lum = (0.35 + 0.65 * round_) * thread + 0.25 * round_**12
    return cover.astype(np.float32), lum.astype(np.float32)


def screw_frame(size: int, origin: tuple[float, float], heading: float) -> tuple[np.ndarray, np.ndarray]:
    """Along/across coordinates of every pixel for a screw whose head starts at `origin`."""
    y, x = coordinates(size)
    dy, dx = y - origin[0], x - origin[1]
    return dx * np.cos(heading) + dy * np.sin(heading), -dx * np.sin(heading) + dy * np.cos(heading)


def render_screw(rng: np.random.Generator, size: int) -> Scene:
    """A screw lying on its side: domed head, threaded shaft and pointed tip, pointing one of four ways."""
    category = CATEGORIES["screw"]
    structure, detail = pick(rng, category.structures), pick(rng, category.details)
    colour = jitter_colour(rng, detail.colour, 0.04)
    heading = SCREW_HEADINGS[structure.key] + rng.uniform(-0.45, 0.45)
    geometry = {
        "length": rng.uniform(0.66, 0.74),
        "head_length": rng.uniform(0.1, 0.12),
        "head_width": rng.uniform(0.085, 0.095),
        "shaft_width": rng.uniform(0.038, 0.045),
        "tip_length": rng.uniform(0.09, 0.12),
        "pitch": rng.uniform(0.028, 0.034),
    }
    centre = (0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03))
    half = geometry["length"] / 2.0
    origin = (centre[0] - half * np.sin(heading), centre[1] - half * np.cos(heading))
    s, t = screw_frame(size, origin, heading)
    cover, lum = screw_shape(s, t, geometry, size)
    surface = (colour[None, None, :] * lum[..., None]).astype(np.float32)
    info = {"colour": colour, "structure": structure.key, "detail": detail.key}
    info |= {"geometry": geometry, "origin": origin, "heading": heading, "s": s, "t": t}
    return _object_scene(rng, surface, cover, info)
