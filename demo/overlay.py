"""The explanation view: the query image under toggleable layers, at a chosen opacity and colormap.

Layers: the visual memory's calibrated anomaly map (absolute: 0.5 is "suspicious", so a normal image stays dark),
the latent -> image attention (min-max scaled: only its shape matters), the kept patches labelled by step, and the
ground truth's outline when it is known. Pure functions on PIL images; the Inspect tab re-renders on every control
change from the run it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from demo.render import draw_patches
from reason_iad.types import AnomalyEvidence, InjectedPatch

LAYERS: tuple[str, ...] = ("anomaly map", "attention", "kept patches", "ground truth")
COLORMAPS: dict[str, tuple[tuple[int, int, int], ...]] = {  # evenly spaced control points, low to high
    "inferno": ((0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)),
    "jet": ((0, 0, 131), (0, 60, 255), (5, 255, 255), (255, 255, 0), (250, 0, 0), (128, 0, 0)),
    "viridis": ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)),
    "reds": ((255, 245, 240), (252, 146, 114), (203, 24, 29), (103, 0, 13)),
}


@dataclass(frozen=True)
class Look:
    """How the explanation view is drawn: which layers, how opaque the heat maps are, and their colormap."""

    layers: tuple[str, ...] = ("anomaly map", "kept patches", "ground truth")
    opacity: float = 0.55
    colormap: str = "inferno"

    @classmethod
    def of(cls, layers: Sequence[str] | None, opacity, colormap: str | None) -> Look:
        """From the tab's controls (unknown layers dropped, opacity clamped to [0, 1], unknown colormaps: inferno)."""
        chosen = tuple(layer for layer in LAYERS if layer in (layers or ()))
        level = min(max(float(opacity if opacity is not None else cls.opacity), 0.0), 1.0)
        return cls(chosen, level, colormap if colormap in COLORMAPS else cls.colormap)


def colorize(values: np.ndarray, colormap: str) -> np.ndarray:
    """Values in [0, 1] [H, W] -> RGB uint8 [H, W, 3] through the colormap's control points (linear between)."""
    points = np.asarray(COLORMAPS[colormap], dtype=np.float32)
    positions = np.linspace(0.0, 1.0, len(points))
    clipped = np.clip(values, 0.0, 1.0)
    channels = [np.interp(clipped, positions, points[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def heat(canvas: Image.Image, grid, look: Look, scale: bool) -> Image.Image:
    """`grid` ([h, w], any resolution) over `canvas` in the look's colormap; each pixel's opacity grows with it.

    `scale` min-max normalises the grid first (attention); otherwise values are read as calibrated [0, 1].
    """
    values = np.asarray(grid, dtype=np.float32)
    if values.size == 0:
        return canvas
    if scale:
        span = float(values.max() - values.min())
        values = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    resized = Image.fromarray((np.clip(values, 0, 1) * 255).astype(np.uint8)).resize(
        canvas.size, Image.Resampling.BILINEAR
    )
    level = np.asarray(resized, dtype=np.float32) / 255.0
    colour = colorize(level, look.colormap).astype(np.float32)
    alpha = (look.opacity * level)[..., None]
    base = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    return Image.fromarray((base * (1 - alpha) + colour * alpha).round().astype(np.uint8))


def explanation_view(
    query: Image.Image,
    look: Look,
    anomaly: AnomalyEvidence | None = None,
    attention: Sequence[Sequence[float]] = (),
    patches: Sequence[InjectedPatch] = (),
    new: Sequence[InjectedPatch] = (),
    mask: np.ndarray | None = None,
    highlight: InjectedPatch | None = None,
) -> Image.Image:
    """The query image with the layers `look` turns on (a layer without data is skipped)."""
    canvas = query.convert("RGB")
    if "anomaly map" in look.layers and anomaly is not None:
        canvas = heat(canvas, anomaly.anomaly_map, look, scale=False)
        width = max(2, max(canvas.size) // 160)
        ImageDraw.Draw(canvas).rectangle(tuple(anomaly.box), outline=(255, 255, 255), width=width)
    if "attention" in look.layers and len(attention):
        canvas = heat(canvas, attention, look, scale=True)
    shown = patches if "kept patches" in look.layers else ()
    outline = mask if "ground truth" in look.layers else None
    return draw_patches(canvas, shown, new, outline, highlight if highlight in shown else None)
